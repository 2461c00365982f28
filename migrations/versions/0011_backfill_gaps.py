"""backfill gaps: a source's outdated cursor, the resyncs it enqueued and its pending re-discovery

Revision ID: 0011
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backfill_gap',
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=True),
    sa.Column('repos', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('occurrences', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('discovery', sa.Text(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('discovered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('source')
    )


def downgrade() -> None:
    op.drop_table('backfill_gap')
