"""Volunteer service: activities, sign-ups, venue and personal-code check-in, attendance, and the
conversion of time served into points (through `points`). Never imports `exchange`."""
