"""Debts from reversals, archive anchors on resident accounts, make-ups under the four-eyes rule.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade():
    with op.batch_alter_table('account') as batch:
        batch.add_column(sa.Column('debt', sa.BigInteger(), server_default='0', nullable=False))
        batch.add_column(sa.Column('archive_count', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('archive_head', sa.String(length=64), server_default=GENESIS, nullable=False))
        batch.create_check_constraint(op.f('ck_account_debt_and_count'), 'debt >= 0 AND archive_count >= 0')
    # Anchor the archives that exist already: their current head and length.
    op.execute(
        "UPDATE account SET "
        "archive_count = (SELECT count(*) FROM archive_entry e WHERE e.user_id = account.owner_id), "
        f"archive_head = COALESCE((SELECT e.hash FROM archive_entry e WHERE e.user_id = account.owner_id "
        f"ORDER BY e.seq DESC LIMIT 1), '{GENESIS}') "
        "WHERE kind = 'resident' AND owner_type = 'user'"
    )
    op.create_table('debt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('creditor_account_id', sa.Integer(), nullable=False),
    sa.Column('original_transfer_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('repaid', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0 AND repaid >= 0 AND repaid <= amount', name=op.f('ck_debt_sane')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_debt_account_id_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['creditor_account_id'], ['account.id'], name=op.f('fk_debt_creditor_account_id_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['original_transfer_id'], ['transfer.id'], name=op.f('fk_debt_original_transfer_id_transfer'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_debt')),
    sa.UniqueConstraint('original_transfer_id', name=op.f('uq_debt_original_transfer_id'))
    )
    op.create_index('ix_debt_account', 'debt', ['account_id', 'id'], unique=False)

    with op.batch_alter_table('attendance') as batch:
        batch.add_column(sa.Column('scanned_in_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('scanned_out_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('scanned_minutes', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('scanned_points', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('makeup_minutes', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('review', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('proposed_in_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('proposed_out_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('review_reason', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('recorded_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('review_note', sa.String(length=255), nullable=True))
        batch.create_foreign_key(op.f('fk_attendance_recorded_by_id_users'), 'users', ['recorded_by_id'], ['id'], ondelete='SET NULL')
        batch.create_foreign_key(op.f('fk_attendance_reviewed_by_id_users'), 'users', ['reviewed_by_id'], ['id'], ondelete='SET NULL')
        batch.create_check_constraint(op.f('ck_attendance_review'), "review IS NULL OR review IN ('pending', 'approved', 'rejected')")
        batch.create_check_constraint(op.f('ck_attendance_makeup'), 'makeup_minutes >= 0 AND makeup_minutes <= credited_minutes')
        batch.create_index('ix_attendance_review', ['review'], unique=False)
    # What the scans said, for attendances recorded before this revision.
    op.execute("UPDATE attendance SET scanned_in_at = checked_in_at WHERE method_in IN ('venue', 'kiosk')")
    op.execute("UPDATE attendance SET scanned_out_at = checked_out_at WHERE method_out IN ('venue', 'kiosk')")
    op.execute(
        "UPDATE attendance SET scanned_minutes = credited_minutes, scanned_points = points "
        "WHERE method_in IN ('venue', 'kiosk') AND method_out IN ('venue', 'kiosk') AND NOT manual"
    )


def downgrade():
    with op.batch_alter_table('attendance') as batch:
        batch.drop_index('ix_attendance_review')
        batch.drop_constraint(op.f('ck_attendance_makeup'), type_='check')
        batch.drop_constraint(op.f('ck_attendance_review'), type_='check')
        batch.drop_constraint(op.f('fk_attendance_reviewed_by_id_users'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_attendance_recorded_by_id_users'), type_='foreignkey')
        for column in ('review_note', 'reviewed_at', 'reviewed_by_id', 'recorded_by_id', 'review_reason',
                       'proposed_out_at', 'proposed_in_at', 'review', 'makeup_minutes', 'scanned_points',
                       'scanned_minutes', 'scanned_out_at', 'scanned_in_at'):
            batch.drop_column(column)
    op.drop_index('ix_debt_account', table_name='debt')
    op.drop_table('debt')
    with op.batch_alter_table('account') as batch:
        batch.drop_constraint(op.f('ck_account_debt_and_count'), type_='check')
        batch.drop_column('archive_head')
        batch.drop_column('archive_count')
        batch.drop_column('debt')
