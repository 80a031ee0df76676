"""Statistics: daily and monthly rollups, their refresh state, the region closure, and the monthly
reports; the published archive roots (points). Reports and roots are append-only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from core.ddl import drop_append_only, make_append_only


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stats_deed',
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('deeds', sa.Integer(), nullable=False),
    sa.Column('deductions', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm')", name=op.f('ck_stats_deed_grain')),
    sa.PrimaryKeyConstraint('grain', 'period', 'region_id', name=op.f('pk_stats_deed'))
    )
    op.create_table('stats_ledger',
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('department_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('store_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('issued', sa.BigInteger(), nullable=False),
    sa.Column('deducted', sa.BigInteger(), nullable=False),
    sa.Column('redeemed', sa.BigInteger(), nullable=False),
    sa.Column('expired', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm')", name=op.f('ck_stats_ledger_grain')),
    sa.PrimaryKeyConstraint('grain', 'period', 'region_id', 'department_id', 'store_id', name=op.f('pk_stats_ledger'))
    )
    op.create_table('stats_people',
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('registered', sa.Integer(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm')", name=op.f('ck_stats_people_grain')),
    sa.PrimaryKeyConstraint('grain', 'period', 'region_id', name=op.f('pk_stats_people'))
    )
    op.create_table('stats_person',
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('user_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('department_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('participations', sa.Integer(), nullable=False),
    sa.Column('service_minutes', sa.BigInteger(), nullable=False),
    sa.Column('makeup_minutes', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm')", name=op.f('ck_stats_person_grain')),
    sa.PrimaryKeyConstraint('grain', 'period', 'user_id', 'department_id', name=op.f('pk_stats_person'))
    )
    with op.batch_alter_table('stats_person', schema=None) as batch_op:
        batch_op.create_index('ix_stats_person_region', ['grain', 'period', 'region_id'], unique=False)

    op.create_table('stats_region_closure',
    sa.Column('ancestor_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('ancestor_id', 'region_id', name=op.f('pk_stats_region_closure'))
    )
    with op.batch_alter_table('stats_region_closure', schema=None) as batch_op:
        batch_op.create_index('ix_stats_region_closure_region', ['region_id'], unique=False)

    op.create_table('stats_service',
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('department_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('activities', sa.Integer(), nullable=False),
    sa.Column('activities_held', sa.Integer(), nullable=False),
    sa.Column('participations', sa.Integer(), nullable=False),
    sa.Column('service_minutes', sa.BigInteger(), nullable=False),
    sa.Column('makeup_minutes', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('signups', sa.Integer(), nullable=False),
    sa.Column('no_shows', sa.Integer(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm')", name=op.f('ck_stats_service_grain')),
    sa.PrimaryKeyConstraint('grain', 'period', 'region_id', 'department_id', name=op.f('pk_stats_service'))
    )
    op.create_table('stats_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('before_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_stats_state'))
    )
    op.create_table('stats_store',
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('store_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('redemptions', sa.Integer(), nullable=False),
    sa.Column('voided', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('goods', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm')", name=op.f('ck_stats_store_grain')),
    sa.PrimaryKeyConstraint('grain', 'period', 'store_id', name=op.f('pk_stats_store'))
    )
    op.create_table('stats_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('rankings', sa.JSON(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('archive_root', sa.String(length=64), nullable=False),
    sa.Column('archive_leaves', sa.Integer(), nullable=False),
    sa.Column('archive_mark', sa.BigInteger(), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_stats_report_region_id_region'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stats_report')),
    sa.UniqueConstraint('region_id', 'month', name=op.f('uq_stats_report_region_id_month'))
    )
    with op.batch_alter_table('stats_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stats_report_region_id'), ['region_id'], unique=False)

    # The rollups read one local day of registrations and of reviewed deeds at a time.
    op.create_index('ix_users_created_at', 'users', ['created_at'], unique=False)
    op.create_index('ix_deed_reviewed_at', 'deed', ['reviewed_at'], unique=False)
    op.create_table('archive_root',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mark', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.String(length=64), nullable=False),
    sa.Column('leaves', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_root')),
    sa.UniqueConstraint('mark', name=op.f('uq_archive_root_mark'))
    )

    # A report and a root are what was published: nobody edits or deletes them afterwards, not
    # even with SQL.
    make_append_only(op, 'stats_report')
    make_append_only(op, 'archive_root')



def downgrade():
    drop_append_only(op, 'archive_root')
    drop_append_only(op, 'stats_report')
    op.drop_table('archive_root')
    op.drop_index('ix_deed_reviewed_at', table_name='deed')
    op.drop_index('ix_users_created_at', table_name='users')
    with op.batch_alter_table('stats_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stats_report_region_id'))

    op.drop_table('stats_report')
    op.drop_table('stats_store')
    op.drop_table('stats_state')
    op.drop_table('stats_service')
    with op.batch_alter_table('stats_region_closure', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_region_closure_region')

    op.drop_table('stats_region_closure')
    with op.batch_alter_table('stats_person', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_person_region')

    op.drop_table('stats_person')
    op.drop_table('stats_people')
    op.drop_table('stats_ledger')
    op.drop_table('stats_deed')
