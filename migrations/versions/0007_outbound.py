"""outbound stream and record history

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The retention floor of the outbound stream (core/db/schema.py: log_retention).
    op.create_table('log_retention',
    sa.Column('singleton', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('dropped_through', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('singleton', name='log_retention_singleton'),
    sa.PrimaryKeyConstraint('singleton')
    )
    op.execute("INSERT INTO log_retention (singleton, dropped_through) VALUES (true, 0)")


def downgrade() -> None:
    op.drop_table('log_retention')
