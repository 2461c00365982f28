"""frames set aside by the ingester (per-frame isolation)

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('frame_reject',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_seq', sa.BigInteger(), nullable=True),
    sa.Column('reason_kind', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.LargeBinary(), nullable=True),
    sa.Column('prefix', sa.LargeBinary(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('frame_reject_received_at', 'frame_reject', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('frame_reject_received_at', table_name='frame_reject')
    op.drop_table('frame_reject')
