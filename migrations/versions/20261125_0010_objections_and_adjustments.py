"""Deed objections carry a status and their resolution; admin adjustments are kept (four eyes).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('adjustment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('issuer_region_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=255), nullable=True),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'posted', 'rejected')", name=op.f('ck_adjustment_status')),
    sa.CheckConstraint('points <> 0', name=op.f('ck_adjustment_nonzero')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_adjustment_decided_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['entry_id'], ['archive_entry.id'], name=op.f('fk_adjustment_entry_id_archive_entry'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['issuer_region_id'], ['region.id'], name=op.f('fk_adjustment_issuer_region_id_region'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_adjustment_requested_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['resident_id'], ['users.id'], name=op.f('fk_adjustment_resident_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjustment')),
    sa.UniqueConstraint('key', name=op.f('uq_adjustment_key'))
    )
    with op.batch_alter_table('adjustment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adjustment_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adjustment_status'), ['status'], unique=False)

    # Objections filed before this revision were never looked at: they stay open for a reviewer.
    with op.batch_alter_table('deed_objection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='open'))
        batch_op.add_column(sa.Column('resolved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolution_note', sa.String(length=255), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_deed_objection_resolved_by_id_users'), 'users', ['resolved_by_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_check_constraint(batch_op.f('ck_deed_objection_status'), "status IN ('open', 'upheld', 'dismissed')")


def downgrade():
    with op.batch_alter_table('deed_objection', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_deed_objection_status'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_deed_objection_resolved_by_id_users'), type_='foreignkey')
        batch_op.drop_column('resolution_note')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('resolved_by_id')
        batch_op.drop_column('status')

    with op.batch_alter_table('adjustment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adjustment_status'))
        batch_op.drop_index(batch_op.f('ix_adjustment_resident_id'))

    op.drop_table('adjustment')
