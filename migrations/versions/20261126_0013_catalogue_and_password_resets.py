"""The default deed catalogue arrives with the schema; admins' one-time password-reset codes.

A fresh `db upgrade` now holds the catalogue of deeds and deductions (before, only the demo seed
made it), so that a county office can record deeds on day one. Rows of the catalogue that an
installation already has (made by the demo seed) are kept as they are.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# The catalogue as shipped (DESIGN §3): code, name, points (negative for deductions). A frozen copy,
# not imported from the application, so that this revision means the same thing forever.
DEFAULT_DEED_TYPES = [
    ("jianyiyongwei", "见义勇为", 50),
    ("haorenhaoshi", "好人好事", 10),
    ("xiaolaoaiqin", "孝老爱亲", 10),
    ("lingliting", "邻里互助", 5),
    ("huanjingweihu", "环境卫生维护", 5),
    ("luanrenglaji", "乱扔垃圾", -5),
    ("weiguiranfang", "违规燃放烟花爆竹", -10),
    ("luanduiluanfang", "乱堆乱放", -5),
]


def upgrade():
    op.create_table('password_reset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=256), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint('failures >= 0', name=op.f('ck_password_reset_failures')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_password_reset_issued_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_reset_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset'))
    )
    with op.batch_alter_table('password_reset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_reset_user_id'), ['user_id'], unique=False)

    deed_type = sa.table(
        'deed_type',
        sa.column('code', sa.String),
        sa.column('name', sa.String),
        sa.column('points', sa.Integer),
        sa.column('region_id', sa.Integer),
        sa.column('active', sa.Boolean),
    )
    present = set(
        op.get_bind().execute(sa.select(deed_type.c.code).where(deed_type.c.region_id.is_(None))).scalars()
    )
    rows = [
        {'code': code, 'name': name, 'points': points, 'region_id': None, 'active': True}
        for code, name, points in DEFAULT_DEED_TYPES
        if code not in present
    ]
    if rows:
        op.bulk_insert(deed_type, rows)


def downgrade():
    # The catalogue stays: deeds recorded since refer to it (and the demo seed made the same rows
    # before this revision existed).
    with op.batch_alter_table('password_reset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_reset_user_id'))

    op.drop_table('password_reset')
