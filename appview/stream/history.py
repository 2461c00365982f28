"""Record history and as-of reads, straight from the log.

History is every logged version of one record key in log (`seq`) order: accepted, rejected
(flagged with why) and unverified copies alike, each with its rev, CID, source and arrival time.

As-of folds the log the way the projector does (ingester/projection/fold.py): among the record's
non-rejected events (verified only, unless asked otherwise) the one with the highest rev wins,
the first seen on a tie; a delete wins as a tombstone. `rev=R` keeps events with rev <= R (the
repo's own clock), `at=T` keeps events we had received by T (what our log knew at T).

Both find the record's events through the dedup key table `record_event_key` (its primary key starts
with did, collection, rkey) and fetch them from the partitioned log by seq, so the log needs no extra
index for them. Events below the retention floor (LOG_RETENTION) are gone from the log: their keys
remain, their rows are simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection

from appview.stream.params import XrpcError
from core import syntax

_COLUMNS = ("e.seq, e.rev, e.action, e.cid, e.source, e.verified, e.rejected,"
            " to_char(e.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), e.record::text")
_KEY = "k.did = %s AND k.collection = %s AND k.rkey = %s"
_FROM = "record_event_key k JOIN record_event e ON e.seq = k.seq"
_HISTORY = f"SELECT {_COLUMNS} FROM {_FROM} WHERE {_KEY} AND k.seq > %s ORDER BY k.seq LIMIT %s"
_AS_OF_BRANCH = f"SELECT {_COLUMNS} FROM {_FROM} WHERE {_KEY} AND e.rejected IS NULL AND {{cond}} AND {{bound}}"
_AS_OF_ORDER = ' ORDER BY rev COLLATE "C" DESC, seq LIMIT 1'


@dataclass(frozen=True, slots=True)
class RecordKey:
    did: str
    collection: str
    rkey: str

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{self.collection}/{self.rkey}"


async def resolve_key(conn: AsyncConnection, uri: syntax.AtUri) -> RecordKey:
    """The record key of `uri`; a handle authority is resolved through the actor projection."""
    assert uri.collection is not None and uri.rkey is not None
    did = uri.did_or_handle
    if not did.startswith("did:"):
        cur = await conn.execute("SELECT did FROM actor WHERE handle = %s", (did.lower(),))
        row = await cur.fetchone()
        if row is None:
            raise XrpcError("RecordNotFound", f"unknown handle {did!r}", status=404)
        did = row[0]
    return RecordKey(did, uri.collection, uri.rkey)


def _version(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, rev, action, cid, source, verified, rejected, received_at, record = row
    out: dict[str, Any] = {"seq": seq, "rev": rev, "action": action, "source": source, "verified": verified,
                           "receivedAt": received_at}
    if cid is not None:  # a delete has none: absent, as the lexicon's optional field says (never null)
        out["cid"] = cid
    if rejected is not None:
        out["rejected"] = rejected
    if record is not None:
        out["record"] = orjson.Fragment(record)
    return out


async def record_history(conn: AsyncConnection, key: RecordKey, after: int, limit: int) -> dict[str, Any]:
    k = (key.did, key.collection, key.rkey)
    cur = await conn.execute(_HISTORY, (*k, after, limit))
    versions = [_version(r) for r in await cur.fetchall()]
    if not versions and after == 0:
        raise XrpcError("RecordNotFound", f"the log has no event for {key.uri}", status=404)
    out: dict[str, Any] = {"uri": key.uri, "versions": versions}
    if len(versions) == limit:
        out["cursor"] = str(versions[-1]["seq"])
    return out


async def record_as_of(conn: AsyncConnection, key: RecordKey, *, rev: str | None, at: datetime | None,
                       include_unverified: bool) -> dict[str, Any]:
    bound, arg = ("k.rev <= %s COLLATE \"C\"", rev) if rev is not None else ("e.received_at <= %s", at)
    if rev is None and at is None:
        bound, arg = "true", None
    conds = ["k.verified", "NOT k.verified"] if include_unverified else ["k.verified"]
    branches, params = [], []
    for cond in conds:
        branches.append(_AS_OF_BRANCH.format(cond=cond, bound=bound))
        params += [key.did, key.collection, key.rkey] + ([arg] if arg is not None else [])
    sql = "SELECT * FROM (" + " UNION ALL ".join(branches) + ") v" + _AS_OF_ORDER
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    when = f"rev {rev}" if rev is not None else f"{at.isoformat()}" if at is not None else "now"
    if row is None:
        raise XrpcError("RecordNotFound", f"{key.uri} did not exist as of {when}", status=404)
    version = _version(row)
    if version["action"] == "delete":
        tombstone = {k: version[k] for k in ("seq", "rev", "source", "verified", "receivedAt")}
        raise XrpcError("RecordNotFound", f"{key.uri} was deleted as of {when}", status=404, tombstone=tombstone)
    return {"uri": key.uri, **version}
