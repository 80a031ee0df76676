"""Provinces may be regions (a root of any level); a household keeps its head's name from the roll.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

LEVELS = "level IN ('province', 'city', 'county', 'township', 'village', 'community', 'grid')"
OLD_LEVELS = "level IN ('city', 'county', 'township', 'village', 'community', 'grid')"


def upgrade():
    # SQLite cannot alter a CHECK constraint: batch mode copies the table with the new one.
    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_region_level'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_region_level'), LEVELS)

    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.add_column(sa.Column('head_name', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_column('head_name')

    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_region_level'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_region_level'), OLD_LEVELS)
