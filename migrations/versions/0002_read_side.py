"""read-side: sort keys, stable comment ids and the indexes the feeds page on

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_SORTED = ("track", "like", "comment", "list")


def upgrade() -> None:
    for table in _SORTED:
        op.add_column(table, sa.Column("sort_at", sa.DateTime(timezone=True), nullable=True))
        # Same rule as the projector (ingester/projection/base.py::sort_at), for rows projected before.
        op.execute(f'UPDATE "{table}" SET sort_at = least(created_at::timestamptz, indexed_at)')
        op.alter_column(table, "sort_at", nullable=False)
    op.add_column("comment", sa.Column("id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE comment c SET id = s.item_id FROM record_state s "
               "WHERE s.did = c.did AND s.collection = 'fm.plyr.comment' AND s.rkey = c.rkey")
    op.alter_column("comment", "id", nullable=False)
    op.execute("CREATE INDEX track_sort ON track (sort_at DESC, id DESC)")
    op.execute("CREATE INDEX track_did_sort ON track (did, sort_at DESC, id DESC)")
    op.drop_index("like_subject", table_name="like")
    op.create_index("like_subject", "like", ["subject_uri", "did"])
    op.execute('CREATE INDEX like_did_sort ON "like" (did, sort_at DESC)')
    op.execute('CREATE INDEX like_sort ON "like" (sort_at DESC)')
    op.execute("CREATE INDEX comment_sort ON comment (sort_at DESC)")
    op.create_index("comment_id", "comment", ["id"])
    op.execute('CREATE INDEX list_sort ON "list" (sort_at DESC)')
    op.create_table(
        "subject_count",
        sa.Column("subject_uri", sa.Text(), primary_key=True),
        sa.Column("like_count", sa.BigInteger(), nullable=False),
        sa.Column("comment_count", sa.BigInteger(), nullable=False),
    )
    op.execute("CREATE INDEX subject_count_likes ON subject_count (like_count DESC, subject_uri)")
    op.execute("""
        INSERT INTO subject_count (subject_uri, like_count, comment_count)
        SELECT s.uri,
            (SELECT count(DISTINCT l.did) FROM "like" l WHERE l.subject_uri = s.uri
               AND NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = l.did AND NOT a.active)),
            (SELECT count(*) FROM comment m WHERE m.subject_uri = s.uri
               AND NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = m.did AND NOT a.active))
        FROM (SELECT subject_uri AS uri FROM "like" UNION SELECT subject_uri FROM comment) s""")
    op.execute("DELETE FROM subject_count WHERE like_count = 0 AND comment_count = 0")


def downgrade() -> None:
    op.drop_table("subject_count")
    for name in ("track_sort", "track_did_sort", "like_did_sort", "like_sort", "comment_sort", "comment_id",
                 "list_sort"):
        op.execute(f"DROP INDEX {name}")
    op.drop_index("like_subject", table_name="like")
    op.create_index("like_subject", "like", ["subject_uri"])
    op.drop_column("comment", "id")
    for table in _SORTED:
        op.drop_column(table, "sort_at")
