"""backfill jobs

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backfill_job',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('pds', sa.Text(), nullable=True),
    sa.Column('rev', sa.Text(), nullable=True),
    sa.Column('records', sa.Integer(), nullable=True),
    sa.Column('changes', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )
    op.create_index('backfill_job_status', 'backfill_job', ['status', 'updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('backfill_job_status', table_name='backfill_job')
    op.drop_table('backfill_job')
