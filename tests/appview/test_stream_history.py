"""Record history and as-of reads against a real Postgres log, including deletes, re-creates, a
late replay of an older write, unverified and rejected copies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db.connect import connect
from core.events import RecordEvent
from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from tests.appview.stream_kit import stream_app
from tests.appview.test_stream import A, rejected, tid
from tests.ingester import events as ev

URI = f"at://{A}/fm.plyr.track/3kaaaaaaaaa22"
RKEY = "3kaaaaaaaaa22"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def unverified(e: RecordEvent) -> RecordEvent:
    return RecordEvent(**{**{f: getattr(e, f) for f in e.__dataclass_fields__}, "verified": False,
                          "source": "jetstream:test"})


def story() -> list[RecordEvent]:
    """In log order: create, update, unverified update, rejected update, delete, re-create, and a
    late replay of a write older than everything (must never resurrect or override)."""
    return [
        ev.put(A, "fm.plyr.track", RKEY, tid(10), ev.track("v1")),
        ev.put(A, "fm.plyr.track", RKEY, tid(20), ev.track("v2"), action="update"),
        unverified(ev.put(A, "fm.plyr.track", RKEY, tid(30), ev.track("v3"), action="update")),
        rejected(A, RKEY, tid(35)),
        ev.delete(A, "fm.plyr.track", RKEY, tid(40)),
        ev.put(A, "fm.plyr.track", RKEY, tid(50), ev.track("v5")),
        ev.put(A, "fm.plyr.track", RKEY, tid(5), ev.track("v0")),
    ]


@pytest.fixture
async def http(db_url: str) -> Any:
    async with await connect(db_url) as conn:
        for e in story():  # one batch each, then spread their arrival over minutes
            await append_batch(conn, [e])
        await conn.execute("UPDATE record_event SET received_at = %s + (seq * interval '1 minute')", (T0,))
        await conn.execute("INSERT INTO actor (did, handle, status, active, seq) VALUES (%s, 'al.test', 'active', "
                           "true, 0)", (A,))
        await conn.commit()
    app = stream_app(db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client


async def as_of(http: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await http.get("/xrpc/fm.plyr.sync.getRecordAsOf", params={"uri": URI, **params})


def title(r: httpx.Response) -> str | None:
    return r.json()["record"]["title"] if r.status_code == 200 else None


async def test_history_lists_every_version_in_log_order(http: httpx.AsyncClient) -> None:
    body = (await http.get("/xrpc/fm.plyr.sync.getRecordHistory", params={"uri": URI})).json()
    versions = body["versions"]
    assert [v["rev"] for v in versions] == [e.rev for e in story()]
    assert [v["action"] for v in versions] == ["create", "update", "update", "create", "delete", "create", "create"]
    assert [v["verified"] for v in versions] == [True, True, False, True, True, True, True]
    # a delete has no cid and no record: absent, never null
    assert "rejected" in versions[3] and "record" not in versions[4] and "cid" not in versions[4]
    assert versions[2]["source"] == "jetstream:test" and versions[0]["receivedAt"].endswith("Z")
    assert versions[0]["record"]["title"] == "v1" and versions[0]["cid"]
    assert [v["seq"] for v in versions] == sorted(v["seq"] for v in versions)
    paged, cursor = [], None
    while True:
        params: dict[str, str | int] = {"uri": URI, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/xrpc/fm.plyr.sync.getRecordHistory", params=params)).json()
        paged += page["versions"]
        if "cursor" not in page:
            break
        cursor = page["cursor"]
    assert paged == versions
    by_handle = (await http.get("/xrpc/fm.plyr.sync.getRecordHistory",
                                params={"uri": f"at://al.test/fm.plyr.track/{RKEY}"})).json()
    assert by_handle["versions"] == versions


async def test_as_of_rev_folds_like_the_projector(http: httpx.AsyncClient) -> None:
    assert title(await as_of(http, rev=tid(4))) is None
    assert title(await as_of(http, rev=tid(5))) == "v0"  # the repo's clock says v0 existed then
    assert title(await as_of(http, rev=tid(15))) == "v1"
    assert title(await as_of(http, rev=tid(20))) == "v2"
    assert title(await as_of(http, rev=tid(30))) == "v2"  # unverified copy not trusted by default
    assert title(await as_of(http, rev=tid(30), includeUnverified="true")) == "v3"
    assert title(await as_of(http, rev=tid(39))) == "v2"  # the rejected update never counts
    deleted = await as_of(http, rev=tid(45))
    assert deleted.status_code == 404 and deleted.json()["error"] == "RecordNotFound"
    assert deleted.json()["tombstone"]["rev"] == tid(40) and deleted.json()["tombstone"]["verified"] is True
    assert title(await as_of(http, rev=tid(50))) == "v5"
    current = await as_of(http)
    assert current.json()["rev"] == tid(50) and current.json()["uri"] == URI


async def test_as_of_time_is_what_the_log_knew_then(http: httpx.AsyncClient) -> None:
    seqs = [v["seq"] for v in (await http.get("/xrpc/fm.plyr.sync.getRecordHistory", params={"uri": URI})).json()[
        "versions"]]

    def after(i: int) -> str:  # just after the i-th event arrived
        return (T0 + timedelta(minutes=seqs[i], seconds=30)).isoformat().replace("+00:00", "Z")

    assert (await as_of(http, at=(T0 - timedelta(days=1)).isoformat())).status_code == 404
    assert title(await as_of(http, at=after(0))) == "v1"
    assert title(await as_of(http, at=after(3))) == "v2"
    gone = await as_of(http, at=after(4))
    assert gone.status_code == 404 and gone.json()["tombstone"]["seq"] == seqs[4]
    assert title(await as_of(http, at=after(5))) == "v5"
    assert title(await as_of(http, at=after(6))) == "v5"  # the late replay of v0 changes nothing


async def test_bad_requests_are_400s_and_unknown_records_404(http: httpx.AsyncClient) -> None:
    for path, params in [
        ("getRecordAsOf", {"uri": URI, "rev": "nope"}),
        ("getRecordAsOf", {"uri": URI, "rev": tid(1), "at": "2026-01-01T00:00:00Z"}),
        ("getRecordAsOf", {"uri": URI, "at": "yesterday"}),
        ("getRecordAsOf", {"uri": URI, "includeUnverified": "yes"}),
        ("getRecordAsOf", {}),
        ("getRecordHistory", {"uri": "https://example.com"}),
        ("getRecordHistory", {"uri": f"at://{A}/fm.plyr.track"}),
        ("getRecordHistory", {"uri": URI, "limit": "0"}),
        ("getRecordHistory", {"uri": URI, "cursor": "-3"}),
        ("getRecordHistory", {"uri": [URI, URI]}),
    ]:
        r = await http.get(f"/xrpc/fm.plyr.sync.{path}", params=params)  # type: ignore[arg-type]
        assert (r.status_code, r.json()["error"]) == (400, "InvalidRequest"), (path, params, r.text)
    for uri in (f"at://{A}/fm.plyr.track/3kzzzzzzzzz22", f"at://nobody.test/fm.plyr.track/{RKEY}"):
        r = await http.get("/xrpc/fm.plyr.sync.getRecordHistory", params={"uri": uri})
        assert (r.status_code, r.json()["error"]) == (404, "RecordNotFound")


def ops() -> st.SearchStrategy[list[tuple[str, int, bool]]]:
    return st.lists(st.tuples(st.sampled_from(["create", "update", "delete"]), st.integers(1, 40), st.booleans()),
                    min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(script=ops())
async def test_as_of_now_equals_the_projection(db_url: str, script: list[tuple[str, int, bool]]) -> None:
    """Whatever order writes (and replays) arrive in, as-of with no bound is the projector's state."""
    async with await connect(db_url) as conn:
        await conn.execute("TRUNCATE record_event, record_state, track, projection_cursor")
        await conn.commit()
        for action, rev, reject in script:
            e = (ev.delete(A, "fm.plyr.track", RKEY, tid(rev)) if action == "delete"
                 else rejected(A, RKEY, tid(rev)) if reject
                 else ev.put(A, "fm.plyr.track", RKEY, tid(rev), ev.track(f"r{rev}"), action=action))
            await append_batch(conn, [e])
        await Projector(lock=False).catch_up(conn)
        await conn.commit()
        cur = await conn.execute("SELECT rev, deleted FROM record_state")
        state = await cur.fetchone()
        app = stream_app(db_url)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                r = await as_of(client)
    if state is None:
        assert r.status_code == 404 and "tombstone" not in r.json()
    elif state[1]:
        assert r.status_code == 404 and r.json()["tombstone"]["rev"] == state[0]
    else:
        assert r.status_code == 200 and r.json()["rev"] == state[0]
