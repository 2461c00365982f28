"""Counter projections (migration 0017), defined beside `core/db/schema.py` on its metadata.

Plays, likes and comments per track, per artist and in all, maintained by the projector in the same
transaction as the rows they count (ingester/projection/counters.py), so reads never count rows. They are
projections like any other: a pure function of the log, rebuilt and digested with the rest.

What they count is the part of visibility the log decides: accounts that are not active, and tracks
self-labelled with a hide value. Operator labels (with expiry judged at read time) are subtracted by the
readers (appview/query/counters.py), which touches only the few labelled subjects.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, MetaData, SmallInteger, Table, Text

from core.labels import HIDE_EVERYWHERE


def counter_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    # One row per projected track: plays linked to it from active accounts, distinct active likers, comments;
    # and its share of the artist's sums (migration 0018): its bounded duration, and `counted` = not
    # self-labelled hidden (a hidden track adds nothing to its artist).
    track_counter = Table(
        "track_counter",
        metadata,
        Column("uri", Text, primary_key=True),
        Column("did", Text, nullable=False),
        Column("plays", BigInteger, nullable=False),
        Column("likes", BigInteger, nullable=False),
        Column("comments", BigInteger, nullable=False),
        Column("duration_s", BigInteger, nullable=False),
        Column("counted", Boolean, nullable=False),
    )
    Index("track_counter_did", track_counter.c.did)
    # One row per artist with at least one track not self-labelled hidden: sums over those tracks
    # (duration bounded per track, as every sum we serve); `counted` = the account is not inactive.
    artist_counter = Table(
        "artist_counter",
        metadata,
        Column("did", Text, primary_key=True),
        Column("tracks", BigInteger, nullable=False),
        Column("duration_s", BigInteger, nullable=False),
        Column("plays", BigInteger, nullable=False),
        Column("likes", BigInteger, nullable=False),
        Column("comments", BigInteger, nullable=False),
        Column("counted", Boolean, nullable=False),
    )
    Index("artist_counter_plays", artist_counter.c.plays.desc(), artist_counter.c.did,
          postgresql_where=artist_counter.c.counted)
    # At most one row (id 1): the sums over counted artists; absent while they are all zero.
    global_counter = Table(
        "global_counter",
        metadata,
        Column("id", SmallInteger, primary_key=True),
        Column("tracks", BigInteger, nullable=False),
        Column("artists", BigInteger, nullable=False),
        Column("duration_s", BigInteger, nullable=False),
        Column("plays", BigInteger, nullable=False),
        Column("likes", BigInteger, nullable=False),
        Column("comments", BigInteger, nullable=False),
    )
    return track_counter, artist_counter, global_counter


def hide_label_index(label: Table) -> Index:
    """Readers look up the subjects carrying a hide label: few rows, found without scanning `label`."""
    return Index("label_hide", label.c.uri, postgresql_where=label.c.val.in_(HIDE_EVERYWHERE))
