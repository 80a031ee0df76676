"""Points: accounts and transfers (the ledger), the hash-chained archive, rules, policies, deeds,
certificates; HTTP idempotency records. Transfers and archive entries are append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

from core.ddl import drop_append_only, make_append_only


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner_type', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'resident' OR balance >= 0", name=op.f('ck_account_resident_not_negative')),
    sa.CheckConstraint("kind IN ('resident', 'issuer', 'store', 'sink')", name=op.f('ck_account_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('kind', 'owner_type', 'owner_id', name=op.f('uq_account_kind_owner_type_owner_id'))
    )
    op.create_table('idempotency_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('mimetype', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_record')),
    sa.UniqueConstraint('user_id', 'key', name=op.f('uq_idempotency_record_user_id_key'))
    )
    with op.batch_alter_table('idempotency_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_record_created_at'), ['created_at'], unique=False)

    op.create_table('deed_type',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('points <> 0', name=op.f('ck_deed_type_nonzero')),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_deed_type_region_id_region'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deed_type')),
    sa.UniqueConstraint('code', 'region_id', name=op.f('uq_deed_type_code_region_id'))
    )
    with op.batch_alter_table('deed_type', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deed_type_region_id'), ['region_id'], unique=False)

    op.create_table('region_policy',
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('notice_days', sa.Integer(), nullable=False),
    sa.Column('expiry', sa.String(length=16), nullable=False),
    sa.Column('settlement_month', sa.Integer(), nullable=False),
    sa.Column('settlement_day', sa.Integer(), nullable=False),
    sa.CheckConstraint("expiry IN ('none', 'annual')", name=op.f('ck_region_policy_expiry')),
    sa.CheckConstraint('notice_days >= 0 AND settlement_month BETWEEN 1 AND 12 AND settlement_day BETWEEN 1 AND 28', name=op.f('ck_region_policy_sane')),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_region_policy_region_id_region'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('region_id', name=op.f('pk_region_policy'))
    )
    op.create_table('certificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('service_minutes', sa.Integer(), nullable=False),
    sa.Column('manual_minutes', sa.Integer(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=128), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_certificate_issued_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_certificate_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate')),
    sa.UniqueConstraint('code', name=op.f('uq_certificate_code'))
    )
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_user_id'), ['user_id'], unique=False)

    op.create_table('point_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('unit_minutes', sa.Integer(), nullable=False),
    sa.Column('minimum_minutes', sa.Integer(), nullable=False),
    sa.Column('daily_cap_minutes', sa.Integer(), nullable=False),
    sa.Column('points_per_hour', sa.Integer(), nullable=False),
    sa.Column('grace_before_minutes', sa.Integer(), nullable=False),
    sa.Column('grace_after_minutes', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('unit_minutes > 0 AND minimum_minutes >= 0 AND daily_cap_minutes > 0 AND points_per_hour >= 0 AND grace_before_minutes >= 0 AND grace_after_minutes >= 0', name=op.f('ck_point_rule_sane')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_point_rule_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_point_rule_region_id_region'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_rule'))
    )
    with op.batch_alter_table('point_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_point_rule_region_id'), ['region_id'], unique=False)

    op.create_table('transfer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('from_account_id', sa.Integer(), nullable=False),
    sa.Column('to_account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('cause_type', sa.String(length=32), nullable=True),
    sa.Column('cause_id', sa.String(length=64), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('service', 'deed', 'deduction', 'redemption', 'refund', 'expiry', 'reversal', 'adjustment')", name=op.f('ck_transfer_kind')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_transfer_positive')),
    sa.CheckConstraint('from_account_id <> to_account_id', name=op.f('ck_transfer_two_accounts')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_transfer_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['from_account_id'], ['account.id'], name=op.f('fk_transfer_from_account_id_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reverses_id'], ['transfer.id'], name=op.f('fk_transfer_reverses_id_transfer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['to_account_id'], ['account.id'], name=op.f('fk_transfer_to_account_id_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_transfer_idempotency_key')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_transfer_reverses_id'))
    )
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.create_index('ix_transfer_cause', ['cause_type', 'cause_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfer_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfer_from_account_id'), ['from_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfer_to_account_id'), ['to_account_id'], unique=False)

    op.create_table('archive_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.String(length=255), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('service_minutes', sa.Integer(), nullable=False),
    sa.Column('manual', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('transfer_id', sa.Integer(), nullable=True),
    sa.Column('cause_type', sa.String(length=32), nullable=True),
    sa.Column('cause_id', sa.String(length=64), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('service', 'deed', 'deduction', 'redemption', 'void', 'reversal', 'adjustment', 'expiry', 'refund')", name=op.f('ck_archive_entry_kind')),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfer.id'], name=op.f('fk_archive_entry_transfer_id_transfer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_archive_entry_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_entry')),
    sa.UniqueConstraint('user_id', 'seq', name=op.f('uq_archive_entry_user_id_seq'))
    )
    with op.batch_alter_table('archive_entry', schema=None) as batch_op:
        batch_op.create_index('ix_archive_entry_occurred', ['user_id', 'occurred_at'], unique=False)

    op.create_table('deed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('deed_type_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('photo', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.String(length=255), nullable=True),
    sa.Column('notice_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transfer_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'approved', 'posted', 'rejected', 'voided')", name=op.f('ck_deed_status')),
    sa.ForeignKeyConstraint(['deed_type_id'], ['deed_type.id'], name=op.f('fk_deed_deed_type_id_deed_type'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_deed_recorded_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_deed_region_id_region'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['resident_id'], ['users.id'], name=op.f('fk_deed_resident_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_deed_reviewed_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfer.id'], name=op.f('fk_deed_transfer_id_transfer'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deed'))
    )
    with op.batch_alter_table('deed', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deed_notice_until'), ['notice_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_deed_region_id'), ['region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deed_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deed_status'), ['status'], unique=False)

    op.create_table('deed_objection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deed_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deed_id'], ['deed.id'], name=op.f('fk_deed_objection_deed_id_deed'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_deed_objection_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deed_objection'))
    )
    with op.batch_alter_table('deed_objection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deed_objection_deed_id'), ['deed_id'], unique=False)
    make_append_only(op, 'transfer')
    make_append_only(op, 'archive_entry')


def downgrade():
    drop_append_only(op, 'archive_entry')
    drop_append_only(op, 'transfer')
    with op.batch_alter_table('deed_objection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deed_objection_deed_id'))

    op.drop_table('deed_objection')
    with op.batch_alter_table('deed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deed_status'))
        batch_op.drop_index(batch_op.f('ix_deed_resident_id'))
        batch_op.drop_index(batch_op.f('ix_deed_region_id'))
        batch_op.drop_index(batch_op.f('ix_deed_notice_until'))

    op.drop_table('deed')
    with op.batch_alter_table('archive_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_archive_entry_occurred')

    op.drop_table('archive_entry')
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_to_account_id'))
        batch_op.drop_index(batch_op.f('ix_transfer_from_account_id'))
        batch_op.drop_index(batch_op.f('ix_transfer_created_at'))
        batch_op.drop_index('ix_transfer_cause')

    op.drop_table('transfer')
    with op.batch_alter_table('point_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_point_rule_region_id'))

    op.drop_table('point_rule')
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certificate_user_id'))

    op.drop_table('certificate')
    op.drop_table('region_policy')
    with op.batch_alter_table('deed_type', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deed_type_region_id'))

    op.drop_table('deed_type')
    with op.batch_alter_table('idempotency_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_record_created_at'))

    op.drop_table('idempotency_record')
    op.drop_table('account')
