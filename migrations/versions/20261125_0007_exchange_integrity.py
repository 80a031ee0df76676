"""Moral supermarket integrity: stock receipts apply once per Idempotency-Key (a unique key on the
movement they wrote), redemptions record how the resident was identified and are flagged for
review when the resident is a clerk.

stock_movement is append-only (triggers): columns are added and dropped in place (plain ALTER
TABLE, never a batch table copy), so its triggers stay.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('stock_movement', sa.Column('idempotency_key', sa.String(length=160), nullable=True))
    op.create_index(op.f('ix_stock_movement_idempotency_key'), 'stock_movement', ['idempotency_key'], unique=True)
    op.add_column('redemption', sa.Column('flagged', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('redemption', sa.Column('identified_by', sa.String(length=8), nullable=True))


def downgrade():
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): no table copy, the triggers stay.
    op.drop_column('redemption', 'identified_by')
    op.drop_column('redemption', 'flagged')
    op.drop_index(op.f('ix_stock_movement_idempotency_key'), table_name='stock_movement')
    op.drop_column('stock_movement', 'idempotency_key')
