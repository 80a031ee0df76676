"""Acting for residents without a phone (代办) and residents' rights: who signed up or checked in on a
resident's behalf, the serial of their printed card, and when they closed their account.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_serial', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('signup', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proxy_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_signup_proxy_by_id_users'), 'users', ['proxy_by_id'], ['id'], ondelete='SET NULL'
        )

    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proxy_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_attendance_proxy_by_id_users'), 'users', ['proxy_by_id'], ['id'], ondelete='SET NULL'
        )


def downgrade():
    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_attendance_proxy_by_id_users'), type_='foreignkey')
        batch_op.drop_column('proxy_by_id')

    with op.batch_alter_table('signup', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_signup_proxy_by_id_users'), type_='foreignkey')
        batch_op.drop_column('proxy_by_id')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
        batch_op.drop_column('card_serial')
