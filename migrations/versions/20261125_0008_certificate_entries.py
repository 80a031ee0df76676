"""Certificates keep what they certified: the seqs and fingerprint of the archive entries they
covered, so that their public check can say when a later correction changed them. Certificates
issued before this revision keep NULL in both and are checked by their printed figures.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_seqs', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_column('fingerprint')
        batch_op.drop_column('entry_seqs')
