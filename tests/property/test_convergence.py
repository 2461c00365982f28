"""Hypothesis: any delivery order that keeps each repo's order, with duplicates and replays mixed
in, folds to the same projections (content digest) as the clean, in-order fold."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db.connect import connect
from core.db.schema import PROJECTION_TABLES
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.append import append_batch
from ingester.projection.digest import digest
from ingester.projection.runner import Projector
from tests.ingester import events as ev

DIDS = ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "did:plc:cccccccccccccccccccccccc")
RKEYS = ("3kaaaaaaaaa22", "3kbbbbbbbbb22", "3kccccccccc22")
B32 = "234567abcdefghijklmnopqrstuvwxyz"
Event = RecordEvent | RepoEvent


def tid(n: int) -> str:
    out = ""
    v = (1_700_000_000_000_000 + n * 1000) << 10
    for _ in range(13):
        out = B32[v & 31] + out
        v >>= 5
    return out


@st.composite
def repo_stream(draw: st.DrawFn, repo: int) -> list[Event]:
    did = DIDS[repo]
    other = DIDS[(repo + 1) % len(DIDS)]
    out: list[Event] = [replace(ev.identity(did, f"user{repo}.test"), source_seq=repo * 1000)]
    for i in range(draw(st.integers(1, 14))):
        rev = tid(repo * 100 + i)
        rkey = draw(st.sampled_from(RKEYS))
        kind = draw(st.sampled_from(["track", "track", "like", "comment", "list", "profile", "bsky", "delete",
                                     "account"]))
        if kind == "account":
            active = draw(st.booleans())
            status = None if active else draw(st.sampled_from(["deactivated", "takendown", "deleted"]))
            out.append(replace(ev.account(did, active, status), source_seq=repo * 1000 + i + 1))
            continue
        subject = f"at://{other}/fm.plyr.track/{draw(st.sampled_from(RKEYS))}"
        record, collection = {
            "track": (ev.track(draw(st.sampled_from(["a", "b", "c"]))), "fm.plyr.track"),
            "like": (ev.like(subject), "fm.plyr.like"),
            "comment": (ev.comment(subject, ms=draw(st.integers(0, 9))), "fm.plyr.comment"),
            "list": (ev.plist([subject] * draw(st.integers(0, 3))), "fm.plyr.list"),
            "profile": (ev.profile(draw(st.sampled_from(["x", "y"]))), "fm.plyr.actor.profile"),
            "bsky": ({"$type": "app.bsky.actor.profile", "displayName": draw(st.sampled_from(["x", "y"]))},
                     "app.bsky.actor.profile"),
            "delete": (None, draw(st.sampled_from(["fm.plyr.track", "fm.plyr.like", "fm.plyr.list",
                                                    "app.bsky.actor.profile"]))),
        }[kind]
        if kind in ("profile", "bsky") or collection == "app.bsky.actor.profile":
            rkey = "self"
        out.append(ev.delete(did, collection, rkey, rev) if record is None
                   else ev.put(did, collection, rkey, rev, record, cid=f"bafy{rev}"))
    return out


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Event], list[Event], list[int]]:
    streams = [draw(repo_stream(i)) for i in range(len(DIDS))]
    clean = [e for s in streams for e in s]
    positions = [0] * len(streams)
    delivered: list[Event] = []
    while any(p < len(s) for p, s in zip(positions, streams, strict=True)):
        i = draw(st.sampled_from([k for k, s in enumerate(streams) if positions[k] < len(s)]))
        delivered.append(streams[i][positions[i]])
        positions[i] += 1
        if delivered and draw(st.integers(0, 4)) == 0:  # a replay of something already delivered
            again = draw(st.sampled_from(delivered))
            if isinstance(again, RecordEvent):
                again = draw(st.sampled_from([
                    replace(again, source="relay-2"),  # the same write seen from another host
                    replace(again, source="jetstream", verified=False),  # an unverifiable copy
                    # re-observed by a resync, which cannot tell a create from an update
                    replace(again, source="backfill",
                            action={"create": "update", "update": "create"}.get(again.action, "delete")),
                ]))
            delivered.append(again)
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(delivered))), max_size=4)))
    return clean, delivered, cuts


async def _fold(url: str, batches: list[list[Event]], page: int) -> str:
    async with await connect(url) as conn:
        tables = [f'"{t.name}"' for t, _ in PROJECTION_TABLES]
        await conn.execute("TRUNCATE record_event, repo_event, projection_cursor, repo_state, source_cursor, "
                           + ", ".join(tables))
        await conn.commit()
        projector = Projector(batch_size=page, project_unverified=True)
        for batch in batches:
            await append_batch(conn, batch)
            await projector.catch_up(conn)
        return (await digest(conn, "content")).sha256


def _split(events: list[Event], cuts: list[int]) -> list[list[Event]]:
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=deliveries(), page=st.integers(1, 7))
def test_any_per_repo_order_converges(db_url: str, data: tuple[list[Event], list[Event], list[int]],
                                      page: int) -> None:
    clean, delivered, cuts = data

    async def run() -> tuple[str, str]:
        expected = await _fold(db_url, [clean], 10_000)
        actual = await _fold(db_url, _split(delivered, cuts), page)
        return expected, actual

    expected, actual = asyncio.run(run())
    assert actual == expected

