"""event log, repo state, cursors and projections

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 13:36:05.682115
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One sequence shared by both log tables: `seq` is a single total order.
    op.execute("CREATE SEQUENCE event_seq")
    op.create_table('actor',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('handle', sa.Text(), nullable=True),
    sa.Column('pds', sa.Text(), nullable=True),
    sa.Column('signing_key', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('purged_rev', sa.Text(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )
    op.create_index('actor_handle', 'actor', ['handle'], unique=False)
    op.create_table('artist_profile',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('bio', sa.Text(), nullable=True),
    sa.Column('avatar', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Text(), nullable=True),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )
    op.create_table('comment',
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('subject_uri', sa.Text(), nullable=False),
    sa.Column('subject_cid', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('timestamp_ms', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Text(), nullable=True),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uri')
    )
    op.create_index('comment_did', 'comment', ['did'], unique=False)
    op.create_index('comment_subject', 'comment', ['subject_uri', 'timestamp_ms'], unique=False)
    op.create_table('like',
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('subject_uri', sa.Text(), nullable=False),
    sa.Column('subject_cid', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uri')
    )
    op.create_index('like_did', 'like', ['did'], unique=False)
    op.create_index('like_subject', 'like', ['subject_uri'], unique=False)
    op.create_table('list',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('list_type', sa.Text(), nullable=True),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Text(), nullable=True),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index('list_did_type', 'list', ['did', 'list_type'], unique=False)
    op.create_table('list_item',
    sa.Column('list_uri', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('subject_uri', sa.Text(), nullable=False),
    sa.Column('subject_cid', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('list_uri', 'position')
    )
    op.create_index('list_item_subject', 'list_item', ['subject_uri'], unique=False)
    op.create_table('projection_cursor',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('record_event',
    sa.Column('seq', sa.BigInteger(), server_default=sa.text("nextval('event_seq')"), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('collection', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('rev', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=True),
    sa.Column('record', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_seq', sa.BigInteger(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('rejected', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('record_event_dedup_unverified', 'record_event', ['did', 'collection', 'rkey', 'rev', 'action'], unique=True, postgresql_where=sa.text('NOT verified'))
    op.create_index('record_event_dedup_verified', 'record_event', ['did', 'collection', 'rkey', 'rev', 'action'], unique=True, postgresql_where='verified')
    op.create_index('record_event_did_seq', 'record_event', ['did', 'seq'], unique=False)
    op.create_table('record_state',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('collection', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('rev', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('item_id', sa.BigInteger(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('did', 'collection', 'rkey')
    )
    op.create_table('repo_event',
    sa.Column('seq', sa.BigInteger(), server_default=sa.text("nextval('event_seq')"), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('rev', sa.Text(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_seq', sa.BigInteger(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('repo_event_dedup', 'repo_event', ['source', 'source_seq', 'kind', 'did'], unique=True, postgresql_where=sa.text('source_seq IS NOT NULL'))
    op.create_index('repo_event_did_seq', 'repo_event', ['did', 'seq'], unique=False)
    op.create_table('repo_state',
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('rev', sa.Text(), nullable=False),
    sa.Column('data_cid', sa.Text(), nullable=True),
    sa.Column('sync_status', sa.Text(), nullable=False),
    sa.Column('desync_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('did')
    )
    op.create_table('source_cursor',
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )
    op.create_table('track',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('did', sa.Text(), nullable=False),
    sa.Column('rkey', sa.Text(), nullable=False),
    sa.Column('cid', sa.Text(), nullable=False),
    sa.Column('rev', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('artist', sa.Text(), nullable=False),
    sa.Column('album', sa.Text(), nullable=True),
    sa.Column('duration', sa.BigInteger(), nullable=True),
    sa.Column('file_type', sa.Text(), nullable=False),
    sa.Column('audio_url', sa.Text(), nullable=True),
    sa.Column('audio_blob_cid', sa.Text(), nullable=True),
    sa.Column('audio_blob_mime', sa.Text(), nullable=True),
    sa.Column('audio_blob_size', sa.BigInteger(), nullable=True),
    sa.Column('image_url', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('features', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('support_gate', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('self_labels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.Text(), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('record', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uri')
    )
    op.create_index('track_album', 'track', ['did', 'album'], unique=False)
    op.create_index('track_audio_blob', 'track', ['audio_blob_cid'], unique=False)
    op.create_index('track_did_id', 'track', ['did', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('track_did_id', table_name='track')
    op.drop_index('track_audio_blob', table_name='track')
    op.drop_index('track_album', table_name='track')
    op.drop_table('track')
    op.drop_table('source_cursor')
    op.drop_table('repo_state')
    op.drop_index('repo_event_did_seq', table_name='repo_event')
    op.drop_index('repo_event_dedup', table_name='repo_event', postgresql_where=sa.text('source_seq IS NOT NULL'))
    op.drop_table('repo_event')
    op.drop_table('record_state')
    op.drop_index('record_event_did_seq', table_name='record_event')
    op.drop_index('record_event_dedup_verified', table_name='record_event', postgresql_where='verified')
    op.drop_index('record_event_dedup_unverified', table_name='record_event', postgresql_where=sa.text('NOT verified'))
    op.drop_table('record_event')
    op.drop_table('projection_cursor')
    op.drop_index('list_item_subject', table_name='list_item')
    op.drop_table('list_item')
    op.drop_index('list_did_type', table_name='list')
    op.drop_table('list')
    op.drop_index('like_subject', table_name='like')
    op.drop_index('like_did', table_name='like')
    op.drop_table('like')
    op.drop_index('comment_subject', table_name='comment')
    op.drop_index('comment_did', table_name='comment')
    op.drop_table('comment')
    op.drop_table('artist_profile')
    op.drop_index('actor_handle', table_name='actor')
    op.drop_table('actor')
    op.execute("DROP SEQUENCE event_seq")
