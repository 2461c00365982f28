"""Read the event log as outbound frames: pages in `seq` order, the head and the retention floor.

A frame is built once per event (JSON bytes cached on the event) so that fanning one event out
to many consumers costs one serialisation. Records are spliced in as the JSON text Postgres
already holds (`orjson.Fragment`), never parsed and re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg import AsyncConnection

from appview.stream.params import COMMIT, REPO_KINDS, EventFilter

ALL_EVENTS = EventFilter(include_rejected=True)
_TIME = ("(extract(epoch FROM received_at) * 1000000)::int8,"
         " to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
_RECORDS = f"""
SELECT seq, did, collection, rkey, rev, action, cid, record::text, source, verified, rejected, {_TIME}
FROM record_event WHERE seq > %s AND seq <= %s {{where}} ORDER BY seq LIMIT %s
"""
_REPOS = f"""
SELECT seq, did, kind, rev, payload::text, source, {_TIME}
FROM repo_event WHERE seq > %s AND seq <= %s {{where}} ORDER BY seq LIMIT %s
"""
_HEAD = "SELECT greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event), 0)"
_FLOOR = "SELECT coalesce((SELECT dropped_through FROM log_retention), 0)"


@dataclass(slots=True)
class StreamEvent:
    """One log event as a consumer sees it; `body` is the frame (a Jetstream-v1-shaped dict)."""

    seq: int
    did: str
    kind: str  # "commit" or the repo event kind
    collection: str | None
    rkey: str | None
    rejected: bool
    body: dict[str, Any]
    _frame: str | None = field(default=None, repr=False)

    @property
    def uri(self) -> str | None:
        return None if self.collection is None else f"at://{self.did}/{self.collection}/{self.rkey}"

    def frame(self) -> str:
        if self._frame is None:
            self._frame = orjson.dumps(self.body).decode()
        return self._frame

    def hydrated_frame(self, view: dict[str, Any] | None) -> str:
        # No view (a like, a deleted or hidden record): the key is left out, not null — the lexicon's
        # `unknown` is an object, and null would break getEvents' output schema.
        return self.frame() if view is None else orjson.dumps({**self.body, "hydrated": view}).decode()

    def matches(self, f: EventFilter) -> bool:
        if self.kind == COMMIT:
            return f.matches_commit(self.did, self.collection or "", self.rejected)
        return f.matches_repo(self.did, self.kind)


def _commit(row: tuple[Any, ...]) -> StreamEvent:
    seq, did, collection, rkey, rev, action, cid, record, source, verified, rejected, time_us, time = row
    commit: dict[str, Any] = {"rev": rev, "operation": action, "collection": collection, "rkey": rkey}
    if action != "delete":
        commit["record"] = None if record is None else orjson.Fragment(record)
        commit["cid"] = cid
    commit["verified"] = verified
    if rejected is not None:
        commit["rejected"] = rejected
    body = {"seq": seq, "did": did, "time_us": time_us, "time": time, "kind": COMMIT, "source": source,
            "commit": commit}
    return StreamEvent(seq, did, COMMIT, collection, rkey, rejected is not None, body)


def _repo(row: tuple[Any, ...]) -> StreamEvent:
    seq, did, kind, rev, payload, source, time_us, time = row
    inner: dict[str, Any] = {"did": did, **orjson.loads(payload)}
    if rev is not None:
        inner["rev"] = rev
    body = {"seq": seq, "did": did, "time_us": time_us, "time": time, "kind": kind, "source": source, kind: inner}
    return StreamEvent(seq, did, kind, None, None, False, body)


def _record_where(f: EventFilter) -> tuple[str, list[Any]]:
    where, params = [], []
    if not f.include_rejected:
        where.append("rejected IS NULL")
    if f.dids:
        where.append("did = ANY(%s)")
        params.append(list(f.dids))
    if not f.any_collection:
        patterns = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in f.prefixes]
        where.append("(collection = ANY(%s) OR collection LIKE ANY(%s))")
        params += [list(f.collections), patterns]
    return "".join(f" AND {w}" for w in where), params


def _repo_where(f: EventFilter) -> tuple[str, list[Any]]:
    where, params = [], []
    if f.repo_kinds != REPO_KINDS:
        where.append("kind = ANY(%s)")
        params.append(list(f.repo_kinds))
    if f.dids:
        where.append("did = ANY(%s)")
        params.append(list(f.dids))
    return "".join(f" AND {w}" for w in where), params


async def read_page(
    conn: AsyncConnection, after: int, upto: int, f: EventFilter, limit: int
) -> tuple[list[StreamEvent], int]:
    """Events with `after < seq <= upto` matching `f`, at most `limit`, in seq order; and the
    position the page covers (pass it back as `after`): the last seq of a full page, else `upto`.

    `upto` must be a seq already known to be committed (e.g. `log_head()` read earlier): the two
    tables are read by two statements with separate snapshots, and with no upper bound a batch
    committing between them could show its repo event without its records. With the bound both
    statements see the same, complete range, because commit order equals seq order.
    Each table is read with the same limit; the merged page stops at the smaller last seq of a
    full table page, so nothing is skipped between pages (as in ingester/eventlog/read.py).
    """
    records: list[StreamEvent] = []
    repos: list[StreamEvent] = []
    async with conn.cursor() as cur:
        if f.wants_commits:
            where, params = _record_where(f)
            await cur.execute(_RECORDS.format(where=where), [after, upto, *params, limit])
            records = [_commit(r) for r in await cur.fetchall()]
        if f.repo_kinds:
            where, params = _repo_where(f)
            await cur.execute(_REPOS.format(where=where), [after, upto, *params, limit])
            repos = [_repo(r) for r in await cur.fetchall()]
    bound = upto
    if len(records) == limit:
        bound = records[-1].seq
    if len(repos) == limit:
        bound = min(bound, repos[-1].seq)
    events = records + repos
    if records and repos:
        events.sort(key=lambda e: e.seq)
    if bound != upto:
        events = [e for e in events if e.seq <= bound]
    return events[:limit], (events[limit - 1].seq if len(events) > limit else bound)


async def log_head(conn: AsyncConnection) -> int:
    """The highest seq committed (0 for an empty log)."""
    async with conn.cursor() as cur:
        await cur.execute(_HEAD)
        return int((await cur.fetchone())[0])  # type: ignore[index]


async def retention_floor(conn: AsyncConnection) -> int:
    """Every event with seq > this is retained; a cursor below it has lost events."""
    async with conn.cursor() as cur:
        await cur.execute(_FLOOR)
        return int((await cur.fetchone())[0])  # type: ignore[index]
