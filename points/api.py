"""JSON routes of the points domain (API.md "Points and archive"). Thin: load, call, dump."""

from __future__ import annotations

from flask import jsonify, url_for

from community import services as community_services
from core.api import Page, Routes, paginate
from core.db import db, utcnow
from core.errors import Invalid, NotFound
from core.security import authorize
from points import adjustments, archive, catalogue, certificates, deeds, policies, queries
from points.schemas import (
    AdjustmentQuery,
    AdjustmentRejectSchema,
    AdjustmentRequestSchema,
    AdjustmentSchema,
    ArchiveSchema,
    CertificateCheckSchema,
    CertificateRequestSchema,
    CertificateSchema,
    DeedQuery,
    DeedRequestSchema,
    DeedSchema,
    DeedTypeChangesSchema,
    DeedTypeQuery,
    DeedTypeRequestSchema,
    DeedTypeSchema,
    DeedVoidSchema,
    EntrySchema,
    ObjectionRequestSchema,
    ObjectionResolveSchema,
    ObjectionSchema,
    PointRuleQuery,
    PointRuleRequestSchema,
    RegionRuleSchema,
    ReviewSchema,
    VerifySchema,
)

api = Routes()


@api.route("/me/archive", response=ArchiveSchema, tag="points")
def my_archive(user):
    """My moral e-archive: totals, the timeline, and the head of its hash chain."""
    return queries.archive_of(user)


@api.route("/residents/<int:resident_id>/archive", response=ArchiveSchema, errors=(404,), tag="points")
def resident_archive(user, resident_id):
    """A resident's archive, for an admin or reviewer of their region."""
    return queries.archive_of(queries.resident_in_scope(user, resident_id))


@api.route("/residents/<int:resident_id>/archive/verify", response=VerifySchema, errors=(404,), tag="points")
def verify_archive(user, resident_id):
    """Recompute a resident's hash chain; name the first entry that does not match."""
    resident = queries.resident_in_scope(user, resident_id)
    return archive.verify(db.session, resident.id)


@api.route(
    "/residents/<int:resident_id>/adjustments",
    "POST",
    body=AdjustmentRequestSchema,
    response=EntrySchema,
    status=201,
    errors=(404, 409),
    also={202: AdjustmentSchema, 200: AdjustmentSchema},
    idempotent=True,
    tag="points",
)
def adjust(user, resident_id, data, idempotency_key):
    """An admin credits or debits a resident of their region, with a mandatory reason; never for
    themselves. A small adjustment posts at once (201, the archive entry); a larger one answers 202
    with the pending adjustment, which a second admin approves or rejects."""
    adjustment = adjustments.request(
        actor=user,
        resident_id=resident_id,
        points=data["points"],
        reason=data["reason"],
        key=idempotency_key,
        now=utcnow(),
    )
    if adjustment.status == "posted":
        return adjustment.entry
    response = jsonify(AdjustmentSchema().dump(adjustment))
    response.status_code = 202 if adjustment.status == "pending" else 200
    return response


@api.route("/adjustments", query=AdjustmentQuery, response=AdjustmentSchema, paged=True, tag="points")
def list_adjustments(user, query):
    """Adjustments of residents in the caller's regions (admins), newest first; `?status=pending`."""
    return paginate(queries.adjustments_within(user, query.get("status")), query, db.session)


@api.route(
    "/adjustments/<int:adjustment_id>/approve",
    "POST",
    body=ReviewSchema,
    response=AdjustmentSchema,
    errors=(404, 409),
    tag="points",
)
def approve_adjustment(user, adjustment_id, data):
    """A second admin of the resident's region (not the requester, not the resident's household)
    posts a pending adjustment."""
    return adjustments.approve(actor=user, adjustment_id=adjustment_id, note=data.get("note"), now=utcnow())


@api.route(
    "/adjustments/<int:adjustment_id>/reject",
    "POST",
    body=AdjustmentRejectSchema,
    response=AdjustmentSchema,
    errors=(404, 409),
    tag="points",
)
def reject_adjustment(user, adjustment_id, data):
    """An admin of the resident's region refuses a pending adjustment, with a reason."""
    return adjustments.reject(actor=user, adjustment_id=adjustment_id, reason=data["reason"], now=utcnow())


@api.route("/deeds", "POST", body=DeedRequestSchema, response=DeedSchema, status=201, idempotent=True, tag="points")
def record_deed(user, data, idempotency_key):
    """A grid worker records a good deed or a violation for a resident of their grid (once per
    Idempotency-Key: a retry after a lost answer does not record the deed twice)."""
    return deeds.record(actor=user, now=utcnow(), **data)


@api.route("/deeds", query=DeedQuery, response=DeedSchema, paged=True, tag="points")
def list_deeds(user, query):
    """Deeds in the caller's scope (reviewers and grid workers), newest first."""
    authorize(user, ("reviewer", "grid_worker", "admin"))
    roots = community_services.admin_regions(user, roles=("reviewer", "grid_worker", "admin"))
    return paginate(queries.deeds_within(roots, status=query.get("status")), query, db.session)


@api.route(
    "/deeds/<int:deed_id>/approve", "POST", body=ReviewSchema, response=DeedSchema, errors=(404, 409), tag="points"
)
def approve_deed(user, deed_id, data):
    """A reviewer of the region approves; the deed goes on the public notice before it posts."""
    return deeds.approve(actor=user, deed_id=deed_id, note=data.get("note"), now=utcnow())


@api.route(
    "/deeds/<int:deed_id>/reject", "POST", body=ReviewSchema, response=DeedSchema, errors=(404, 409), tag="points"
)
def reject_deed(user, deed_id, data):
    """A reviewer of the region rejects a pending deed."""
    return deeds.reject(actor=user, deed_id=deed_id, note=data.get("note"), now=utcnow())


@api.route(
    "/deeds/<int:deed_id>/void", "POST", body=DeedVoidSchema, response=DeedSchema, errors=(404, 409), tag="points"
)
def void_deed(user, deed_id, data):
    """A reviewer voids an approved deed during its notice, with a reason."""
    return deeds.void(actor=user, deed_id=deed_id, reason=data["reason"], now=utcnow())


@api.route(
    "/deeds/<int:deed_id>/objections",
    "POST",
    body=ObjectionRequestSchema,
    response=ObjectionSchema,
    status=201,
    errors=(404, 409),
    tag="points",
)
def object_to_deed(user, deed_id, data):
    """Object to a deed during its public notice; the deed waits for a reviewer to resolve it."""
    return deeds.object_to(actor=user, deed_id=deed_id, reason=data["reason"], now=utcnow())


@api.route(
    "/deeds/<int:deed_id>/objections/<int:objection_id>/resolve",
    "POST",
    body=ObjectionResolveSchema,
    response=ObjectionSchema,
    errors=(404, 409),
    tag="points",
)
def resolve_objection(user, deed_id, objection_id, data):
    """A reviewer of the region upholds (the deed is rejected) or dismisses (it posts) an objection."""
    return deeds.resolve_objection(
        actor=user,
        deed_id=deed_id,
        objection_id=objection_id,
        decision=data["decision"],
        note=data.get("note"),
        now=utcnow(),
    )


@api.route(
    "/deed-types", query=DeedTypeQuery, response=DeedTypeSchema, paged=True, auth=False, errors=(404,), tag="points"
)
def list_deed_types(user, query):
    """The catalogue of deeds and deductions (negative points) that apply in a region: for each code,
    the nearest region's type; `include_retired` lists retired ones too."""
    region = community_services.region_by_code(query.get("region_code"))
    if query.get("region_code") and region is None:
        raise NotFound("region_not_found")
    select = catalogue.types_for(region, include_retired=query["include_retired"])
    return paginate(select, query, db.session)


def _deed_type_values(data: dict) -> catalogue.Change:
    return catalogue.Change(name=data.get("name"), points=data.get("points"), active=data.get("active"))


@api.route(
    "/deed-types",
    "POST",
    body=DeedTypeRequestSchema,
    response=DeedTypeSchema,
    status=201,
    errors=(409,),
    tag="points",
)
def add_deed_type(user, data):
    """An admin adds a deed type for a region they administer (its whole subtree); a code inherited
    from above is shadowed there from now on."""
    return catalogue.add(
        actor=user, code=data["code"], values=_deed_type_values(data), region_code=data.get("region_code"), now=utcnow()
    )


@api.route(
    "/deed-types/<code>",
    "PATCH",
    body=DeedTypeChangesSchema,
    response=DeedTypeSchema,
    errors=(404, 409),
    tag="points",
)
def change_deed_type(user, code, data):
    """An admin renames, re-prices, retires (`active: false`) or brings back a deed type for a region
    they administer. Deeds already recorded keep their points."""
    if data.get("code") not in (None, code):
        raise Invalid(errors={"code": ["编码不能修改；请新增一个类型并停用旧的"]})
    return catalogue.change(
        actor=user, code=code, values=_deed_type_values(data), region_code=data.get("region_code"), now=utcnow()
    )


@api.route("/certificates/<code>", response=CertificateCheckSchema, auth=False, errors=(404,), tag="points")
def check_certificate(user, code):
    """Public check of a printed certificate: masked personal data only."""
    return certificates.public_view(certificates.lookup(code))


@api.route(
    "/me/certificates", "POST", body=CertificateRequestSchema, response=CertificateSchema, status=201, tag="points"
)
def issue_certificate(user, data):
    """Issue my service-record certificate for a period."""
    cert = certificates.issue(user=user, now=utcnow(), **data)
    cert.url = url_for("points.certificate_page", code=cert.code, _external=True)
    return cert


@api.route("/point-rules", query=PointRuleQuery, response=RegionRuleSchema, paged=True, tag="points")
def list_point_rules(user, query):
    """The duration → points rule and the policy in force in each region an admin administers (or in
    `region_code`'s subtree), with where each is inherited from."""
    page = paginate(queries.rule_regions(user, query.get("region_code")), query, db.session)
    return Page(policies.region_rules(db.session, list(page.items)), page.page, page.per_page, page.total)


@api.route("/point-rules/<region_code>", response=RegionRuleSchema, errors=(404,), tag="points")
def get_point_rule(user, region_code):
    """One region's rule and policy in force, with where each is inherited from."""
    return policies.rule_of(user, region_code)


@api.route("/point-rules/<region_code>", "PUT", body=PointRuleRequestSchema, response=RegionRuleSchema, tag="points")
def put_point_rule(user, region_code, data):
    """An admin sets a region's rule (points per hour, rounding, minimum, daily cap) and policy
    (expiry); the subtree inherits it unless a region below has its own. Attendances settled after
    the change use it; earlier credits keep the version they used."""
    return policies.put_region_rule(actor=user, region_code=region_code, now=utcnow(), **data)
