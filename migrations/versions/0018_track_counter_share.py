"""track_counter keeps each track's share of its artist's sums (duration, whether it counts), so a step that
touches a few tracks moves the artist and global counters by the difference instead of re-summing the artist

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# As ingester/projection/counters.py computes them (core/db/counters.py declares the columns).
_HIDE = "ARRAY['!takedown', '!hide', '!suspend', 'copyright-violation']::text[]"


_UPGRADE = (
    "ALTER TABLE track_counter ADD COLUMN duration_s bigint NOT NULL DEFAULT 0, "
    "ADD COLUMN counted boolean NOT NULL DEFAULT true",
    f"""UPDATE track_counter tc SET duration_s = least(greatest(coalesce(t.duration, 0), 0), 86400),
        counted = NOT (t.self_labels ?| {_HIDE}) FROM track t WHERE t.uri = tc.uri""",
    "ALTER TABLE track_counter ALTER COLUMN duration_s DROP DEFAULT, ALTER COLUMN counted DROP DEFAULT",
)


def upgrade() -> None:
    for stmt in _UPGRADE:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("ALTER TABLE track_counter DROP COLUMN duration_s, DROP COLUMN counted")
