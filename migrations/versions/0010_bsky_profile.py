"""Bluesky profiles of the accounts we track

Revision ID: 0010
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # app.bsky.actor.profile/self of tracked accounts (core/db/schema.py: bsky_profile). A projection: it
    # fills from the log on the next `appview rebuild`, or as profiles are written and repos resynced.
    op.create_table('bsky_profile',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('avatar_cid', sa.Text(), nullable=True),
    sa.Column('avatar_mime', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Text(), nullable=True),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )


def downgrade() -> None:
    op.drop_table('bsky_profile')
