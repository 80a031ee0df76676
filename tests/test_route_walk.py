"""Every rule of the URL map, every method, against every kind of caller in scope and out of it.

`ACCESS` says who may reach each endpoint; the walk sends each (rule, method) as each caller, with
real ids of objects in scope filled in (tests/walk.py), and fails on any access the table does not
allow and on any refusal it does not expect. An endpoint without an entry fails by name, so a new
route cannot slip in unreviewed. The detailed statuses are the matrix's (tests/test_*_authz.py).
"""

from __future__ import annotations

from tests.walk import (
    CALLERS,
    build_walk_world,
    callers,
    is_page,
    matrix_cases,
    reached,
    request_for,
    walkable_rules,
    watching_refusals,
)

ALL = frozenset(CALLERS)
SIGNED_IN = ALL - {"anonymous"}
# In scope of the objects the URLs name: the county's admin and the city's above it; the
# township's reviewer; department 1's organizer; the resident's grid worker; store 1's clerk.
ADMINS = frozenset({"admin", "city_admin"})
EVERY_ADMIN = ADMINS | {"admin_other_county"}  # a list of their own region's
REVIEWERS = ADMINS | {"reviewer"}
EVERY_REVIEWER = EVERY_ADMIN | {"reviewer", "reviewer_elsewhere"}
ORGANIZER = frozenset({"organizer"})
EVERY_ORGANIZER = ORGANIZER | {"organizer_elsewhere"}
GRID_WORKER = frozenset({"grid_worker"})
EVERY_GRID_WORKER = GRID_WORKER | {"grid_worker_elsewhere"}
CLERK = frozenset({"clerk"})
STORE_STAFF = ADMINS | CLERK
# The resident's card: an admin of their region or their grid worker.
CARD = ADMINS | GRID_WORKER
# A deed's photo: the person it is about, their grid worker, reviewers and admins over them.
DEED_PHOTO = REVIEWERS | GRID_WORKER | {"resident"}

# endpoint → who may reach it (a request that is not 401, 403, 404 or a demand to sign in), or
# {method: who} where the methods differ. Admins and reviewers "elsewhere" reach the lists of
# their own regions; an import by an admin elsewhere answers its report with every row refused.
ACCESS: dict[str, frozenset[str] | dict[str, frozenset[str]]] = {
    "api.community_audit_log": EVERY_REVIEWER,
    "api.community_audit_log_export": EVERY_REVIEWER,
    "api.community_region_security": ADMINS,
    "api.community_reset_user_totp": ADMINS,
    "api.community_set_region_security": ADMINS,
    "api.community_totp_confirm": SIGNED_IN,
    "api.community_totp_disable": SIGNED_IN,
    "api.community_totp_recovery_codes": SIGNED_IN,
    "api.community_totp_start": SIGNED_IN,
    "api.community_totp_status": SIGNED_IN,
    "security_pages.admin_audit": EVERY_REVIEWER,
    "security_pages.admin_audit_export": EVERY_REVIEWER,
    "security_pages.admin_reset_totp": ADMINS,
    "security_pages.admin_security": {"GET": EVERY_ADMIN, "POST": ADMINS},  # the form names the county
    "security_pages.login_code": ALL,
    "security_pages.my_security": SIGNED_IN,
    "security_pages.my_security_confirm": SIGNED_IN,
    "security_pages.my_security_disable": SIGNED_IN,
    # The QR of an enrolment not yet started is 404 for everyone (tests/test_community_totp.py shows one).
    "security_pages.my_security_qr": frozenset(),
    "security_pages.my_security_recovery_codes": SIGNED_IN,
    "security_pages.my_security_start": SIGNED_IN,
    "api.community_change_user": ADMINS,
    "api.community_close_account": SIGNED_IN,
    "api.community_create_department": ADMINS,
    "api.community_create_region": ADMINS,
    "api.community_get_region": ALL,
    "api.community_grant_role": ADMINS,
    "api.community_import_template": EVERY_ADMIN,
    "api.community_list_departments": ALL,
    "api.community_list_regions": ALL,
    "api.community_list_roles": EVERY_ADMIN,
    "api.community_list_users": ADMINS,
    "api.community_me": SIGNED_IN,
    "api.community_my_code": SIGNED_IN,
    "api.community_my_code_png": SIGNED_IN,
    "api.community_my_export": SIGNED_IN,
    "api.community_post_import": EVERY_ADMIN,
    "api.community_register": ALL,
    "api.community_reset_user_password": ADMINS,
    "api.community_revoke_role": ADMINS,
    "api.community_token": ALL,
    "api.community_unlock_user": ADMINS,
    "api.community_use_password_reset": ALL,
    "api.exchange_add_item": STORE_STAFF,
    "api.exchange_create_store": ADMINS,
    "api.exchange_find_resident": CLERK,
    "api.exchange_list_items": ALL,
    "api.exchange_list_redemptions": STORE_STAFF,
    "api.exchange_list_stores": ALL,
    "api.exchange_move_stock": STORE_STAFF,
    "api.exchange_redeem": CLERK,
    "api.exchange_void": STORE_STAFF,
    "api.points_add_deed_type": ADMINS,
    "api.points_adjust": ADMINS,
    "api.points_approve_adjustment": ADMINS,
    "api.points_approve_deed": REVIEWERS,
    "api.points_change_deed_type": ADMINS,
    "api.points_check_certificate": ALL,
    "api.points_get_point_rule": ADMINS,
    "api.points_issue_certificate": SIGNED_IN,
    "api.points_list_adjustments": EVERY_ADMIN,
    "api.points_list_deed_types": ALL,
    "api.points_list_deeds": EVERY_REVIEWER | EVERY_GRID_WORKER,
    "api.points_list_point_rules": EVERY_ADMIN,
    "api.points_my_archive": SIGNED_IN,
    "api.points_object_to_deed": SIGNED_IN,
    "api.points_put_point_rule": ADMINS,
    "api.points_record_deed": GRID_WORKER,
    "api.points_reject_adjustment": ADMINS,
    "api.points_reject_deed": REVIEWERS,
    "api.points_resident_archive": REVIEWERS,
    "api.points_resolve_objection": REVIEWERS,
    "api.points_verify_archive": REVIEWERS,
    "api.points_void_deed": REVIEWERS,
    "api.stats_by_department": REVIEWERS,
    "api.stats_by_region": REVIEWERS,
    "api.stats_by_store": REVIEWERS,
    "api.stats_export_table": REVIEWERS,
    "api.stats_get_report": ADMINS,
    "api.stats_integrity_flags": REVIEWERS,
    "api.stats_list_reports": EVERY_REVIEWER,
    "api.stats_monthly": REVIEWERS,
    "api.stats_ranking_departments": REVIEWERS,
    "api.stats_ranking_households": REVIEWERS,
    "api.stats_ranking_regions": REVIEWERS,
    "api.stats_ranking_volunteers": REVIEWERS,
    "api.stats_summary": REVIEWERS,
    "api.volunteer_annul": ORGANIZER,
    "api.volunteer_approve_makeup": REVIEWERS,
    "api.volunteer_approve_signup": ORGANIZER,
    "api.volunteer_cancel_activity": ORGANIZER,
    "api.volunteer_cancel_sign_up": SIGNED_IN,
    "api.volunteer_check_in": SIGNED_IN,
    "api.volunteer_close_activity": ORGANIZER,
    "api.volunteer_correct": ORGANIZER,
    "api.volunteer_create_activity": ORGANIZER,
    "api.volunteer_finish_activity": ORGANIZER,
    "api.volunteer_get_activity": ALL,
    "api.volunteer_list_activities": ALL,
    "api.volunteer_list_attendances": ORGANIZER,
    "api.volunteer_list_signups": ORGANIZER,
    "api.volunteer_live": ORGANIZER,
    "api.volunteer_my_attendances": SIGNED_IN,
    "api.volunteer_publish_activity": ORGANIZER,
    "api.volunteer_reject_makeup": REVIEWERS,
    "api.volunteer_reject_signup": ORGANIZER,
    "api.volunteer_scan": ORGANIZER,
    "api.volunteer_sign_up": SIGNED_IN,
    "api.volunteer_update_activity": ORGANIZER,
    "api.volunteer_venue_code": ORGANIZER,
    "api.volunteer_venue_code_png": ORGANIZER,
    "community.admin_create_region": ADMINS,
    "community.admin_departments": {"GET": EVERY_ADMIN, "POST": ADMINS},
    "community.admin_home": EVERY_ADMIN,
    "community.admin_imports": EVERY_ADMIN,
    "community.admin_revoke_role": ADMINS,
    "community.admin_roles": {"GET": EVERY_ADMIN, "POST": ADMINS},
    "community.admin_unlock_user": ADMINS,
    "community.change_password": SIGNED_IN,
    "community.close_account": SIGNED_IN,
    "community.home": ALL,
    "community.inbox": SIGNED_IN,
    "community.login": ALL,
    "community.logout": ALL,
    "community.my_code": SIGNED_IN,
    "community.my_data": SIGNED_IN,
    "community.my_data_xlsx": SIGNED_IN,
    "community.privacy": ALL,
    "community.resident_card": CARD,
    "community.resident_card_png": CARD,
    "community.signup": ALL,
    "exchange.counter": CLERK,
    "exchange.create_store": ADMINS,
    "exchange.goods": STORE_STAFF,
    "exchange.grant_clerk": ADMINS,
    "exchange.item_picture": ALL,
    "exchange.my_stores": EVERY_ADMIN | CLERK | {"clerk_elsewhere"},
    "exchange.receipt": STORE_STAFF,
    "exchange.report": STORE_STAFF,
    "exchange.void": STORE_STAFF,
    "health.core_healthz": ALL,
    "openapi_json": ALL,
    "points.adjust": ADMINS,
    "points.certificate_lookup": ALL,
    "points.certificate_page": ALL,
    "points.certificate_print": frozenset({"resident"}),
    "points.certificate_qr": ALL,
    "points.deed_photo": DEED_PHOTO,
    "points.my_archive": SIGNED_IN,
    "points.my_certificates": SIGNED_IN,
    "points.new_deed": {"GET": EVERY_GRID_WORKER, "POST": GRID_WORKER},
    "points.notices": ALL,
    "points.object_to": SIGNED_IN,
    "points.resident": REVIEWERS,
    "points.residents": EVERY_REVIEWER,
    "points.review_adjustments": {"GET": EVERY_ADMIN, "POST": ADMINS},
    "points.review_deeds": {"GET": EVERY_REVIEWER, "POST": REVIEWERS},
    "points_settings.deed_types": ADMINS,
    "points_settings.point_rules": ADMINS,
    "stats.dashboard": REVIEWERS,
    "stats.report_list": EVERY_REVIEWER,
    "stats.report_page": ADMINS,
    "user_pages.admin_password_reset": ADMINS,
    "user_pages.admin_set_active": ADMINS,
    "user_pages.admin_users": EVERY_ADMIN,
    "user_pages.password_reset": ALL,
    "volunteer.activity_detail": ALL,
    "volunteer.activity_list": ALL,
    "volunteer.dashboard": EVERY_ORGANIZER,
    "volunteer.edit_activity": ORGANIZER,
    "volunteer.kiosk": ORGANIZER,
    "volunteer.live": ORGANIZER,
    "volunteer.makeups": {"GET": EVERY_REVIEWER, "POST": REVIEWERS},
    "volunteer.manage": ORGANIZER,
    "volunteer.my_activities": SIGNED_IN,
    "volunteer.new_activity": {"GET": EVERY_ORGANIZER, "POST": ORGANIZER},
    "volunteer.poster": ORGANIZER,
    "volunteer.proxy_signup": {"GET": EVERY_GRID_WORKER | EVERY_ORGANIZER, "POST": GRID_WORKER | ORGANIZER},
    "volunteer.scan": SIGNED_IN,
    "volunteer.signup": SIGNED_IN,
}


def expected(endpoint: str, method: str) -> frozenset[str] | None:
    entry = ACCESS.get(endpoint)
    if isinstance(entry, dict):
        return entry.get(method)
    return entry


def test_every_endpoint_has_an_access_entry(app):
    missing = sorted(
        f"{rule.endpoint} ({method} {rule.rule})"
        for rule, method in walkable_rules(app)
        if expected(rule.endpoint, method) is None
    )
    assert not missing, "endpoints without an entry in ACCESS (tests/test_route_walk.py): " + ", ".join(missing)


def test_every_route_refuses_every_caller_the_table_does_not_allow(app, backend):
    matrix_cases(app)  # the matrix's queries and bodies; resolving them builds a world of its own
    backend.reset()
    w = build_walk_world()
    people = callers(app, w)
    pairs = [(rule, method) for rule, method in walkable_rules(app) if expected(rule.endpoint, method) is not None]
    problems, sent = [], 0
    with watching_refusals():
        for rule, method in pairs:
            allowed = expected(rule.endpoint, method)
            # Refusals first: a write that goes through comes after every caller it must refuse.
            for name in sorted(CALLERS, key=lambda name: name in allowed):
                path, body, multipart = request_for(rule, method, w)
                response = people[name].send(method, path, body, multipart)
                sent += 1
                got = reached(path, response)
                if got != (name in allowed):
                    what = "reached" if got else "was refused"
                    problems.append(f"{method} {path} [{rule.endpoint}]: {name} {what} ({response.status_code})")
                elif not got and not is_page(path) and response.mimetype != "application/problem+json":
                    problems.append(f"{method} {path}: {name}'s {response.status_code} is not problem+json")
    print(f"route walk: {len(pairs)} routes × {len(CALLERS)} callers = {sent} requests")
    assert sent == len(pairs) * len(CALLERS)
    assert not problems, f"{len(problems)} unexpected outcomes of {sent} requests:\n" + "\n".join(problems)
