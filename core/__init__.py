"""Framework plumbing that knows no domain: the bare app, config, database, errors, security,
audit, jobs and the API toolkit. No module here imports a domain package; the domains are wired
into an app by the composition root, `moralcredit.create_app` (tests/test_core_wiring.py checks)."""
