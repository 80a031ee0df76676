"""Every change to people and roles leaves an append-only audit entry (who, what, when, before/after)."""

from __future__ import annotations

import sqlalchemy as sa

from community import services
from core.audit import AuditEntry
from core.db import db, utcnow
from tests import factories as f


def entries(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_people_regions_departments_and_roles_are_audited(app):
    f.region("4301", level="county")
    admin = f.grant(f.user("4301", name="周管理"), "admin", "region", "4301")
    services.create_region(actor=admin, code="430101", name="镇", level="township", parent_code="4301", now=utcnow())
    department = services.create_department(actor=admin, name="派出所", region_code="430101", now=utcnow())
    resident = f.user("430101", name="李四")
    grant = services.grant_role(
        actor=admin,
        user_id=resident.id,
        role="organizer",
        scope_type="department",
        scope_id=department.id,
        now=utcnow(),
    )
    services.revoke_role(actor=admin, grant_id=grant.id, now=utcnow())

    assert [e.after["code"] for e in entries("region.create")] == ["4301", "430101"]
    assert entries("region.create")[1].actor_id == admin.id
    assert entries("department.create")[0].after == {"name": "派出所", "region_code": "430101"}
    registered = [e.object_id for e in entries("user.register")]
    assert str(resident.id) in registered
    assert entries("role.grant")[-1].after["role"] == "organizer"
    revoked = entries("role.revoke")[0]
    assert revoked.before["user_id"] == resident.id and revoked.actor_name == "周管理"


def test_the_audit_log_never_holds_a_password_or_a_full_id_number(app):
    f.region("4301", level="county")
    f.user("4301", phone="13912345678", id_number="430922199001011237")
    text = str([(e.before, e.after) for e in db.session.scalars(sa.select(AuditEntry))])
    assert "430922199001011237" not in text and "13912345678" not in text
    assert "pbkdf2" not in text and "scrypt" not in text
