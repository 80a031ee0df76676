"""Moral supermarket: stores, items, the stock ledger (append-only), redemptions and their lines;
the notification outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

from core.ddl import drop_append_only, make_append_only


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('key', name=op.f('uq_notification_key'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_sent_at'), ['sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_user_id'), ['user_id'], unique=False)

    op.create_table('store',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('opening_hours', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_store_region_id_region'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store')),
    sa.UniqueConstraint('region_id', 'name', name=op.f('uq_store_region_id_name'))
    )
    with op.batch_alter_table('store', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_store_region_id'), ['region_id'], unique=False)

    op.create_table('item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('points_price', sa.Integer(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('low_stock_threshold', sa.Integer(), nullable=False),
    sa.Column('monthly_limit', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('picture', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('low_stock_threshold >= 0 AND (monthly_limit IS NULL OR monthly_limit > 0)', name=op.f('ck_item_sane')),
    sa.CheckConstraint('points_price > 0', name=op.f('ck_item_price_positive')),
    sa.CheckConstraint('stock >= 0', name=op.f('ck_item_stock_not_negative')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_item_store_id_store'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item')),
    sa.UniqueConstraint('store_id', 'name', name=op.f('uq_item_store_id_name'))
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_store_id'), ['store_id'], unique=False)

    op.create_table('redemption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('clerk_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=160), nullable=False),
    sa.Column('total_points', sa.Integer(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('transfer_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_by_id', sa.Integer(), nullable=True),
    sa.Column('void_reason', sa.String(length=255), nullable=True),
    sa.Column('void_transfer_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('completed', 'voided')", name=op.f('ck_redemption_status')),
    sa.CheckConstraint('total_points > 0', name=op.f('ck_redemption_total_positive')),
    sa.ForeignKeyConstraint(['clerk_id'], ['users.id'], name=op.f('fk_redemption_clerk_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['resident_id'], ['users.id'], name=op.f('fk_redemption_resident_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_redemption_store_id_store'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfer.id'], name=op.f('fk_redemption_transfer_id_transfer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['void_transfer_id'], ['transfer.id'], name=op.f('fk_redemption_void_transfer_id_transfer'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['voided_by_id'], ['users.id'], name=op.f('fk_redemption_voided_by_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemption')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_redemption_idempotency_key'))
    )
    with op.batch_alter_table('redemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_redemption_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemption_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemption_store_id'), ['store_id'], unique=False)

    op.create_table('redemption_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('redemption_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('qty', sa.Integer(), nullable=False),
    sa.Column('unit_points', sa.Integer(), nullable=False),
    sa.CheckConstraint('qty > 0 AND unit_points > 0', name=op.f('ck_redemption_line_positive')),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_redemption_line_item_id_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['redemption_id'], ['redemption.id'], name=op.f('fk_redemption_line_redemption_id_redemption'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemption_line'))
    )
    with op.batch_alter_table('redemption_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_redemption_line_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemption_line_redemption_id'), ['redemption_id'], unique=False)

    op.create_table('stock_movement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('stock_after', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('donor', sa.String(length=64), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('counted', sa.Integer(), nullable=True),
    sa.Column('redemption_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('purchase', 'donation', 'redemption', 'void', 'stocktake')", name=op.f('ck_stock_movement_kind')),
    sa.CheckConstraint('delta <> 0', name=op.f('ck_stock_movement_nonzero')),
    sa.CheckConstraint('stock_after >= 0', name=op.f('ck_stock_movement_stock_after_not_negative')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_stock_movement_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_stock_movement_item_id_item'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['redemption_id'], ['redemption.id'], name=op.f('fk_stock_movement_redemption_id_redemption'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_movement'))
    )
    with op.batch_alter_table('stock_movement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stock_movement_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_stock_movement_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stock_movement_redemption_id'), ['redemption_id'], unique=False)
    make_append_only(op, 'stock_movement')


def downgrade():
    drop_append_only(op, 'stock_movement')
    with op.batch_alter_table('stock_movement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stock_movement_redemption_id'))
        batch_op.drop_index(batch_op.f('ix_stock_movement_item_id'))
        batch_op.drop_index(batch_op.f('ix_stock_movement_created_at'))

    op.drop_table('stock_movement')
    with op.batch_alter_table('redemption_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_redemption_line_redemption_id'))
        batch_op.drop_index(batch_op.f('ix_redemption_line_item_id'))

    op.drop_table('redemption_line')
    with op.batch_alter_table('redemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_redemption_store_id'))
        batch_op.drop_index(batch_op.f('ix_redemption_resident_id'))
        batch_op.drop_index(batch_op.f('ix_redemption_created_at'))

    op.drop_table('redemption')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_store_id'))

    op.drop_table('item')
    with op.batch_alter_table('store', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_store_region_id'))

    op.drop_table('store')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_user_id'))
        batch_op.drop_index(batch_op.f('ix_notification_sent_at'))
        batch_op.drop_index(batch_op.f('ix_notification_created_at'))

    op.drop_table('notification')
