"""JSON routes of volunteer service (API.md "Activities and attendance"). Thin: load, call, dump."""

from __future__ import annotations

from flask import Response, url_for

from core.api import PageQuery, Routes, paginate
from core.db import db, utcnow
from core.qr import qr_png
from volunteer import activities, attendance, queries, signups, tokens
from volunteer.models import Activity
from volunteer.schemas import (
    ActivityChangesSchema,
    ActivityQuery,
    ActivityRequestSchema,
    ActivitySchema,
    AttendanceSchema,
    CheckinSchema,
    CorrectionSchema,
    LiveSchema,
    PersonalScanSchema,
    ReasonSchema,
    ReviewNoteSchema,
    ScanResultSchema,
    SignupSchema,
    VenueCodeQuery,
    VenueCodeSchema,
)

api = Routes()


def _with_counts(activity: Activity) -> Activity:
    activity.counts = activities.counts(activity.id)
    return activity


@api.route("/activities", "POST", body=ActivityRequestSchema, response=ActivitySchema, status=201, tag="volunteer")
def create_activity(user, data):
    """An organizer creates an activity for their department (a draft)."""
    return _with_counts(activities.create(actor=user, now=utcnow(), **data))


@api.route(
    "/activities/<int:activity_id>",
    "PATCH",
    body=ActivityChangesSchema,
    response=ActivitySchema,
    errors=(404, 409),
    tag="volunteer",
)
def update_activity(user, activity_id, data):
    """Edit a draft or published activity: the fields sent change; its department and region stay."""
    data.pop("department_id", None)
    data.pop("region_code", None)
    return _with_counts(activities.update(actor=user, activity_id=activity_id, now=utcnow(), **data))


def _transition(name):
    def view(user, activity_id):
        return _with_counts(getattr(activities, name)(actor=user, activity_id=activity_id, now=utcnow()))

    view.__name__ = f"{name}_activity"
    view.__doc__ = {
        "publish": "Publish a draft: volunteers can now sign up.",
        "cancel": "Cancel an activity; signed-up volunteers are notified.",
        "finish": "Mark an activity finished; no-shows are recorded.",
        "close": "Close a finished activity.",
    }[name]
    return view


for _name in ("publish", "cancel", "finish", "close"):
    api.route(
        f"/activities/<int:activity_id>/{_name}", "POST", response=ActivitySchema, errors=(404, 409), tag="volunteer"
    )(_transition(_name))


@api.route("/activities", query=ActivityQuery, response=ActivitySchema, paged=True, auth=False, tag="volunteer")
def list_activities(user, query):
    """Activities, filtered by region subtree, status, time, category and text (drafts: own only)."""
    select = activities.browse(
        user,
        status=query.get("status"),
        region_code=query.get("region_code"),
        category=query.get("category"),
        ends_after=query.get("from"),
        starts_before=query.get("to"),
        text=query.get("q"),
    )
    page = paginate(select.order_by(Activity.starts_at.desc(), Activity.id.desc()), query, db.session)
    counts = activities.counts_for([a.id for a in page.items])
    for activity in page.items:
        activity.counts = counts[activity.id]
    return page


@api.route("/activities/<int:activity_id>", response=ActivitySchema, auth=False, errors=(404,), tag="volunteer")
def get_activity(user, activity_id):
    """One activity with its sign-up counts."""
    return _with_counts(activities.get(activity_id, viewer=user))


@api.route(
    "/activities/<int:activity_id>/signups",
    "POST",
    response=SignupSchema,
    status=201,
    errors=(404, 409),
    tag="volunteer",
)
def sign_up(user, activity_id):
    """Sign up: confirmed, waitlisted when full, or pending when the organizer approves."""
    return signups.sign_up(user=user, activity_id=activity_id, now=utcnow())


@api.route(
    "/activities/<int:activity_id>/signups/me", "DELETE", response=SignupSchema, errors=(404, 409), tag="volunteer"
)
def cancel_sign_up(user, activity_id):
    """Cancel my sign-up before the start; the first waitlisted volunteer is promoted."""
    return signups.cancel(user=user, activity_id=activity_id, now=utcnow())


@api.route(
    "/activities/<int:activity_id>/signups",
    query=PageQuery,
    response=SignupSchema,
    paged=True,
    errors=(404,),
    tag="volunteer",
)
def list_signups(user, activity_id, query):
    """The sign-ups of an activity, in sign-up order (organizers)."""
    return paginate(queries.signups_of(activities.organized(user, activity_id)), query, db.session)


def _decide(approve: bool):
    def view(user, activity_id, signup_id):
        return signups.decide(actor=user, activity_id=activity_id, signup_id=signup_id, approve=approve, now=utcnow())

    view.__name__ = "approve_signup" if approve else "reject_signup"
    view.__doc__ = "Approve a pending sign-up." if approve else "Reject a pending sign-up."
    return view


api.route(
    "/activities/<int:activity_id>/signups/<int:signup_id>/approve",
    "POST",
    response=SignupSchema,
    errors=(404, 409),
    tag="volunteer",
)(_decide(True))
api.route(
    "/activities/<int:activity_id>/signups/<int:signup_id>/reject",
    "POST",
    response=SignupSchema,
    errors=(404, 409),
    tag="volunteer",
)(_decide(False))


def _venue(activity: Activity, mode: str) -> dict:
    token, expires_at = tokens.poster(activity) if mode == "poster" else tokens.rotating(activity, utcnow())
    return {"token": token, "expires_at": expires_at, "url": url_for("volunteer.scan", t=token, _external=True)}


@api.route(
    "/activities/<int:activity_id>/venue-code",
    query=VenueCodeQuery,
    response=VenueCodeSchema,
    errors=(404,),
    tag="volunteer",
)
def venue_code(user, activity_id, query):
    """The venue QR's URL and token: rotating every 30 s, or the static poster code."""
    return _venue(activities.organized(user, activity_id), query["mode"])


@api.route(
    "/activities/<int:activity_id>/venue-code.png",
    query=VenueCodeQuery,
    content_type="image/png",
    errors=(404,),
    tag="volunteer",
)
def venue_code_png(user, activity_id, query):
    """The venue QR as a PNG image."""
    code = _venue(activities.organized(user, activity_id), query["mode"])
    response = Response(qr_png(code["url"], box_size=12), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@api.route("/checkins", "POST", body=CheckinSchema, response=ScanResultSchema, tag="volunteer")
def check_in(user, data):
    """Check in (or, on a later scan, out) with the token from the venue QR's URL."""
    row, action = attendance.scan_venue_code(user=user, token=data["token"], now=utcnow())
    return {"attendance": row, "action": action, "volunteer": user}


@api.route(
    "/activities/<int:activity_id>/scans",
    "POST",
    body=PersonalScanSchema,
    response=ScanResultSchema,
    errors=(404,),
    tag="volunteer",
)
def scan(user, activity_id, data):
    """Kiosk: the organizer scans a volunteer's personal code to check them in or out."""
    row, action = attendance.scan_personal_code(
        organizer=user, activity_id=activity_id, code=data["code"], now=utcnow()
    )
    return {"attendance": row, "action": action, "volunteer": row.user}


@api.route(
    "/activities/<int:activity_id>/attendances/<int:user_id>",
    "PUT",
    body=CorrectionSchema,
    response=AttendanceSchema,
    errors=(404,),
    tag="volunteer",
)
def correct(user, activity_id, user_id, data):
    """Back-fill or correct a volunteer's times with a reason; points are re-settled."""
    return attendance.correct(actor=user, activity_id=activity_id, user_id=user_id, now=utcnow(), **data)


@api.route(
    "/activities/<int:activity_id>/attendances/<int:user_id>/annul",
    "POST",
    body=ReasonSchema,
    response=AttendanceSchema,
    errors=(404,),
    tag="volunteer",
)
def annul(user, activity_id, user_id, data):
    """Annul a wrong check-in (its points are reversed)."""
    return attendance.annul(actor=user, activity_id=activity_id, user_id=user_id, reason=data["reason"], now=utcnow())


@api.route(
    "/activities/<int:activity_id>/attendances/<int:user_id>/approve",
    "POST",
    body=ReviewNoteSchema,
    response=AttendanceSchema,
    errors=(404, 409),
    tag="volunteer",
)
def approve_makeup(user, activity_id, user_id, data):
    """A reviewer of the activity's region (not the recorder, not the volunteer) approves a make-up."""
    return attendance.approve(actor=user, activity_id=activity_id, user_id=user_id, note=data.get("note"), now=utcnow())


@api.route(
    "/activities/<int:activity_id>/attendances/<int:user_id>/reject",
    "POST",
    body=ReasonSchema,
    response=AttendanceSchema,
    errors=(404, 409),
    tag="volunteer",
)
def reject_makeup(user, activity_id, user_id, data):
    """A reviewer rejects a make-up: nothing is credited beyond what already was."""
    return attendance.reject(actor=user, activity_id=activity_id, user_id=user_id, reason=data["reason"], now=utcnow())


@api.route(
    "/activities/<int:activity_id>/attendances",
    query=PageQuery,
    response=AttendanceSchema,
    paged=True,
    errors=(404,),
    tag="volunteer",
)
def list_attendances(user, activity_id, query):
    """The activity's attendance table (organizers)."""
    return paginate(queries.attendances_of(activities.organized(user, activity_id)), query, db.session)


@api.route("/activities/<int:activity_id>/live", response=LiveSchema, errors=(404,), tag="volunteer")
def live(user, activity_id):
    """For the live check-in screen: how many are inside, and the latest arrivals."""
    activity = activities.organized(user, activity_id)
    inside, total = queries.presence(activity)
    return {
        "inside": inside,
        "checked_in": total,
        "signed_up": activities.counts(activity.id)["signed_up"],
        "latest": [
            {"name": r.user.name, "action": "签到" if r.status == "open" else "签退", "at": r.updated_at.isoformat()}
            for r in queries.latest_scans(activity)
        ],
    }


@api.route("/me/attendances", query=PageQuery, response=AttendanceSchema, paged=True, tag="volunteer")
def my_attendances(user, query):
    """My attendance with credited minutes and points."""
    return paginate(queries.attendances_of_user(user), query, db.session)
