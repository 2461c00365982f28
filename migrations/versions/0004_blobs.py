"""blob mirror and playability

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Must equal core.db.schema.PLYR_FILE_ID_REGEX (the index expression and the /audio query agree).
PLYR_FILE_ID_REGEX = "/audio/([0-9a-f]{8,64})(?:\\.[A-Za-z0-9]{1,8})?(?:[?#]|$)"


def upgrade() -> None:
    op.create_table('blob',
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('mime', sa.Text(), nullable=True),
    sa.Column('store', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('mirrored_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unreferenced_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('cid')
    )
    op.create_index('blob_due', 'blob', ['state', 'next_attempt_at'], unique=False)
    op.create_table('audio_url_check',
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('url')
    )
    op.execute(f"CREATE INDEX track_plyr_file_id ON track (substring(audio_url FROM '{PLYR_FILE_ID_REGEX}'))")


def downgrade() -> None:
    op.drop_index('track_plyr_file_id', table_name='track')
    op.drop_table('audio_url_check')
    op.drop_index('blob_due', table_name='blob')
    op.drop_table('blob')
