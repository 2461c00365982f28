"""track.audio_host: the host of an https audioUrl (printable ASCII, no credentials, a valid port), stored,
so reads judge playability by a column instead of regexes per row

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

# core/blobstore/playability.py AUDIO_HOST_SQL, as it stood at this revision (core/db/audio_host.py declares it).
_EXPR = (
    r"CASE WHEN audio_url ~ '^https://([^/?#:@\\]+)(?::([0-9]{1,5}))?(?:[/?#].*)?$' AND audio_url !~ '[^!-~]'"
    r" AND coalesce(substring(audio_url from '^https://[^/?#:@\\]+:([0-9]{1,5})')::int, 0) <= 65535"
    r" THEN lower(substring(audio_url from '^https://([^/?#:@\\]+)')) END"
)


def upgrade() -> None:
    op.execute(f"ALTER TABLE track ADD COLUMN audio_host text GENERATED ALWAYS AS ({_EXPR}) STORED")


def downgrade() -> None:
    op.execute("ALTER TABLE track DROP COLUMN IF EXISTS audio_host")
