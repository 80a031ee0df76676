"""Statistics at city size: figures of every subtree per day, month and year, per department,
rankings of each month and year, and integrity flags of each month, all made by the refresh. The
refresh state is cleared, so the next `stats-refresh` rebuilds every rollup (and fills these).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stats_area',
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('activities', sa.BigInteger(), nullable=False),
    sa.Column('activities_held', sa.BigInteger(), nullable=False),
    sa.Column('participations', sa.BigInteger(), nullable=False),
    sa.Column('service_minutes', sa.BigInteger(), nullable=False),
    sa.Column('makeup_minutes', sa.BigInteger(), nullable=False),
    sa.Column('signups', sa.BigInteger(), nullable=False),
    sa.Column('no_shows', sa.BigInteger(), nullable=False),
    sa.Column('issued', sa.BigInteger(), nullable=False),
    sa.Column('deducted', sa.BigInteger(), nullable=False),
    sa.Column('redeemed', sa.BigInteger(), nullable=False),
    sa.Column('expired', sa.BigInteger(), nullable=False),
    sa.Column('redemptions', sa.BigInteger(), nullable=False),
    sa.Column('goods', sa.BigInteger(), nullable=False),
    sa.Column('deeds', sa.BigInteger(), nullable=False),
    sa.Column('deductions', sa.BigInteger(), nullable=False),
    sa.Column('registered', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm', 'y')", name=op.f('ck_stats_area_grain')),
    sa.PrimaryKeyConstraint('region_id', 'grain', 'period', name=op.f('pk_stats_area'))
    )
    with op.batch_alter_table('stats_area', schema=None) as batch_op:
        batch_op.create_index('ix_stats_area_period', ['grain', 'period'], unique=False)

    op.create_table('stats_department',
    sa.Column('department_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('activities', sa.BigInteger(), nullable=False),
    sa.Column('activities_held', sa.BigInteger(), nullable=False),
    sa.Column('participations', sa.BigInteger(), nullable=False),
    sa.Column('service_minutes', sa.BigInteger(), nullable=False),
    sa.Column('makeup_minutes', sa.BigInteger(), nullable=False),
    sa.Column('signups', sa.BigInteger(), nullable=False),
    sa.Column('no_shows', sa.BigInteger(), nullable=False),
    sa.Column('issued', sa.BigInteger(), nullable=False),
    sa.Column('deducted', sa.BigInteger(), nullable=False),
    sa.Column('redeemed', sa.BigInteger(), nullable=False),
    sa.Column('expired', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("grain IN ('d', 'm', 'y')", name=op.f('ck_stats_department_grain')),
    sa.PrimaryKeyConstraint('department_id', 'grain', 'period', name=op.f('pk_stats_department'))
    )
    with op.batch_alter_table('stats_department', schema=None) as batch_op:
        batch_op.create_index('ix_stats_department_period', ['grain', 'period'], unique=False)

    op.create_table('stats_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stats_flag'))
    )
    with op.batch_alter_table('stats_flag', schema=None) as batch_op:
        batch_op.create_index('ix_stats_flag_month', ['month', 'kind', 'position'], unique=False)

    op.create_table('stats_rank',
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('subject_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('minutes', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('by_points', sa.Integer(), nullable=False),
    sa.Column('by_hours', sa.Integer(), nullable=False),
    sa.CheckConstraint("grain IN ('m', 'y')", name=op.f('ck_stats_rank_grain')),
    sa.PrimaryKeyConstraint('kind', 'grain', 'period', 'region_id', 'subject_id', name=op.f('pk_stats_rank'))
    )
    with op.batch_alter_table('stats_rank', schema=None) as batch_op:
        batch_op.create_index('ix_stats_rank_period', ['grain', 'period'], unique=False)
        batch_op.create_index('ix_stats_rank_hours', ['kind', 'grain', 'period', 'region_id', 'by_hours'], unique=False)
        batch_op.create_index('ix_stats_rank_points', ['kind', 'grain', 'period', 'region_id', 'by_points'], unique=False)

    op.create_table('stats_flag_region',
    sa.Column('flag_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('region_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['stats_flag.id'], name=op.f('fk_stats_flag_region_flag_id_stats_flag'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('flag_id', 'region_id', name=op.f('pk_stats_flag_region'))
    )
    with op.batch_alter_table('stats_flag_region', schema=None) as batch_op:
        batch_op.create_index('ix_stats_flag_region_region', ['region_id', 'flag_id'], unique=False)

    op.execute("DELETE FROM stats_state")


def downgrade():
    with op.batch_alter_table('stats_flag_region', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_flag_region_region')

    op.drop_table('stats_flag_region')
    with op.batch_alter_table('stats_rank', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_rank_points')
        batch_op.drop_index('ix_stats_rank_hours')
        batch_op.drop_index('ix_stats_rank_period')

    op.drop_table('stats_rank')
    with op.batch_alter_table('stats_flag', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_flag_month')

    op.drop_table('stats_flag')
    with op.batch_alter_table('stats_department', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_department_period')

    op.drop_table('stats_department')
    with op.batch_alter_table('stats_area', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_area_period')

    op.drop_table('stats_area')
