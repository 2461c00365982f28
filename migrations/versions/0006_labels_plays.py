"""labels and teal.fm plays

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Log: labels share `event_seq` with record_event / repo_event (one total order).
    op.create_table('label_event',
    sa.Column('seq', sa.BigInteger(), server_default=sa.text("nextval('event_seq')"), nullable=False),
    sa.Column('src', sa.Text(), nullable=True),
    sa.Column('uri', sa.Text(), nullable=True),
    sa.Column('val', sa.Text(), nullable=True),
    sa.Column('label', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('digest', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_seq', sa.BigInteger(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('rejected', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('label_event_dedup', 'label_event', ['digest'], unique=True)
    op.create_index('label_event_uri', 'label_event', ['uri'], unique=False)

    op.create_table('label',
    sa.Column('src', sa.Text(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('val', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=True),
    sa.Column('neg', sa.Boolean(), nullable=False),
    sa.Column('cts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('exp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('src', 'uri', 'val')
    )
    op.create_index('label_uri', 'label', ['uri'], unique=False)

    op.create_table('play',
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('collection', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('track_name', sa.Text(), nullable=False),
    sa.Column('artists', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('release_name', sa.Text(), nullable=True),
    sa.Column('duration', sa.BigInteger(), nullable=True),
    sa.Column('played_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('origin_uri', sa.Text(), nullable=True),
    sa.Column('music_service', sa.Text(), nullable=True),
    sa.Column('client_agent', sa.Text(), nullable=True),
    sa.Column('isrc', sa.Text(), nullable=True),
    sa.Column('recording_mbid', sa.Text(), nullable=True),
    sa.Column('plyr_origin', sa.Boolean(), nullable=False),
    sa.Column('subject_uri', sa.Text(), nullable=True),
    sa.Column('track_uri', sa.Text(), nullable=True),
    sa.Column('link', sa.Text(), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uri')
    )
    op.create_index('play_did_played', 'play', ['did', 'played_at'], unique=False)
    op.create_index('play_played', 'play', ['played_at'], unique=False)
    op.create_index('play_track', 'play', ['track_uri'], unique=False,
                    postgresql_where=sa.text('track_uri IS NOT NULL'))
    op.create_index('play_subject', 'play', ['subject_uri'], unique=False,
                    postgresql_where=sa.text('subject_uri IS NOT NULL'))
    op.create_index('play_track_name', 'play', ['track_name'], unique=False)
    op.create_index('track_title', 'track', ['title'], unique=False)

    op.create_table('actor_status',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('collection', sa.Text(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expiry', sa.DateTime(timezone=True), nullable=False),
    sa.Column('track_name', sa.Text(), nullable=False),
    sa.Column('artists', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('item', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('did', 'collection')
    )


def downgrade() -> None:
    op.drop_table('actor_status')
    op.drop_index('track_title', table_name='track')
    op.drop_table('play')
    op.drop_table('label')
    op.drop_table('label_event')
