"""`bsky_profile`, defined beside `core/db/schema.py` (which is at the module size cap) on its metadata.

The account's own Bluesky profile (`app.bsky.actor.profile/self`), for tracked accounts only: the strings are
bounded by the lexicon (64 / 256 graphemes) and an invalid record is rejected before it gets here.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text


def bsky_profile_table(metadata: MetaData) -> Table:
    return Table(
        "bsky_profile",
        metadata,
        Column("did", Text, primary_key=True),
        Column("cid", Text, nullable=False),
        Column("display_name", Text),
        Column("description", Text),
        Column("avatar_cid", Text),
        Column("avatar_mime", Text),
        Column("created_at", Text),
        Column("indexed_at", DateTime(timezone=True), nullable=False),
    )
