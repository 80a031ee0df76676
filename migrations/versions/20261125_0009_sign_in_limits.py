"""Sign-in limits: escalating short locks, counts that restart, failures looked up per account.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lockouts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('failures_reset_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_phone_at', ['phone', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_phone_at')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('failures_reset_at')
        batch_op.drop_column('lockouts')
