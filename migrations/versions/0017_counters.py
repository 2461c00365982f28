"""counter projections: plays, likes and comments per track, per artist and in all

Revision ID: 0017
Revises: 0014
"""
from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# core/db/counters.py declares these; ingester/projection/counters.py maintains them with the same rules.
_HIDE = "ARRAY['!takedown', '!hide', '!suspend', 'copyright-violation']::text[]"
_INACTIVE = "EXISTS (SELECT 1 FROM actor a WHERE a.did = {} AND NOT a.active)"

_CREATE = (
    """CREATE TABLE track_counter (uri text PRIMARY KEY, did text NOT NULL, plays bigint NOT NULL,
       likes bigint NOT NULL, comments bigint NOT NULL)""",
    "CREATE INDEX track_counter_did ON track_counter (did)",
    """CREATE TABLE artist_counter (did text PRIMARY KEY, tracks bigint NOT NULL, duration_s bigint NOT NULL,
       plays bigint NOT NULL, likes bigint NOT NULL, comments bigint NOT NULL, counted boolean NOT NULL)""",
    "CREATE INDEX artist_counter_plays ON artist_counter (plays DESC, did) WHERE counted",
    """CREATE TABLE global_counter (id smallint PRIMARY KEY, tracks bigint NOT NULL, artists bigint NOT NULL,
       duration_s bigint NOT NULL, plays bigint NOT NULL, likes bigint NOT NULL, comments bigint NOT NULL)""",
    "CREATE INDEX label_hide ON label (uri) WHERE val IN ('!takedown', '!hide', '!suspend', 'copyright-violation')",
)

# The same numbers the projector would have reached folding the log: computed once from the projections.
_BACKFILL = (
    f"""INSERT INTO track_counter (uri, did, plays, likes, comments)
        SELECT t.uri, t.did,
               (SELECT count(*) FROM play p WHERE p.track_uri = t.uri AND NOT {_INACTIVE.format('p.did')}),
               coalesce(sc.like_count, 0), coalesce(sc.comment_count, 0)
        FROM track t LEFT JOIN subject_count sc ON sc.subject_uri = t.uri""",
    f"""INSERT INTO artist_counter (did, tracks, duration_s, plays, likes, comments, counted)
        SELECT t.did, count(*), sum(least(greatest(coalesce(t.duration, 0), 0), 86400)), sum(tc.plays),
               sum(tc.likes), sum(tc.comments), NOT {_INACTIVE.format('t.did')}
        FROM track t JOIN track_counter tc ON tc.uri = t.uri
        WHERE NOT (t.self_labels ?| {_HIDE}) GROUP BY t.did""",
    """INSERT INTO global_counter (id, tracks, artists, duration_s, plays, likes, comments)
        SELECT 1, sum(tracks), count(*), sum(duration_s), sum(plays), sum(likes), sum(comments)
        FROM artist_counter WHERE counted HAVING count(*) > 0""",
)


def upgrade() -> None:
    for stmt in (*_CREATE, *_BACKFILL):
        op.execute(stmt)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS label_hide")
    for table in ("global_counter", "artist_counter", "track_counter"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
