"""`JetstreamIngest.handle` against a real Postgres: framekit commits → Jetstream JSON (the fake's
converter) → log rows, cursor in the same transaction, then the projector under both policies."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from ingester.pipeline.jetstream import BAD_REV, JetstreamIngest
from ingester.projection.runner import Projector
from ingester.validate.records import RecordValidator
from tests.ingester.framekit import Net, Repo, StaticResolver, track
from tests.jetstream_fake.wire import Upstream, convert, v1_json, v2_json

SOURCE = "jetstream-v2:js.test"
VALIDATOR = RecordValidator()
TRACK = "fm.plyr.track"


class Rig:
    def __init__(self, conn: psycopg.AsyncConnection, version: str = "v2") -> None:
        self.conn, self.version = conn, version
        self.net = Net()
        self.resolver = StaticResolver()
        self.ingest = JetstreamIngest(conn, source=SOURCE, version=version,  # type: ignore[arg-type]
                                      resolver=self.resolver, validator=VALIDATOR)
        self.seq = 0

    def repo(self, handle: str) -> Repo:
        r = self.net.repo(handle)
        self.resolver.publish(r)
        return r

    def frames(self, *firehose: bytes) -> list[bytes]:
        """Jetstream frames for firehose frames, each event with the next position."""
        return [self.frame(up) for f in firehose for up in convert(f)]

    def frame(self, up: Upstream) -> bytes:
        self.seq += 1
        text = v2_json(up, 1_700_000_000_000_000 + self.seq, self.seq) if self.version == "v2" else \
            v1_json(up, 1_700_000_000_000_000 + self.seq, self.seq)
        assert text is not None
        return text.encode()

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params)
            out = await cur.fetchall() if cur.description else []
        await self.conn.commit()
        return out


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_unverified_rows_cursor_dedup_and_policy(conn: psycopg.AsyncConnection, version: str) -> None:
    rig = Rig(conn, version)
    alice = rig.repo("alice.test")
    frames = rig.frames(
        alice.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track("One"))]),
        alice.commit([("create", f"{TRACK}/3kbbbbbbbbb22", track("Two")),
                       ("update", f"{TRACK}/3kaaaaaaaaa22", track("One (edit)"))]),
        alice.commit([("delete", f"{TRACK}/3kbbbbbbbbb22", None)]),
    )
    out = await rig.ingest.handle(frames)
    assert out.appended == 5  # the identity first seen, then four record ops
    assert await rig.rows("SELECT kind, payload->>'handle' FROM repo_event") == [("identity", "alice.test")]
    assert await rig.rows("SELECT action, verified, rejected FROM record_event ORDER BY seq") == [
        ("create", False, None), ("create", False, None), ("update", False, None), ("delete", False, None)]
    position = 1_700_000_000_000_000 + rig.seq if version == "v1" else rig.seq
    assert await rig.rows("SELECT cursor FROM source_cursor WHERE source = %s", SOURCE) == [(position,)]
    assert await rig.rows("SELECT count(*) FROM repo_state") == [(0,)]  # never moves a chain

    replay = await rig.ingest.handle(frames[1:])  # an inclusive reconnect overlaps what was committed
    assert replay.appended == 0

    await Projector(project_unverified=False).catch_up(conn)
    assert await rig.rows("SELECT count(*) FROM track") == [(0,)]
    await rig.rows("DELETE FROM projection_cursor")
    await rig.rows("DELETE FROM actor")
    await Projector(project_unverified=True).catch_up(conn)
    assert await rig.rows("SELECT title FROM track") == [("One (edit)",)]


async def test_cid_mismatch_bad_rev_and_unstorable_bodies(conn: psycopg.AsyncConnection) -> None:
    rig = Rig(conn)
    mallory = rig.repo("mallory.test")
    (up,) = convert(mallory.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track("Real"))]))
    assert up.commit is not None
    forged = Upstream("commit", up.did, TRACK, commit={**up.commit, "record": {**up.commit["record"], "title": "Fake"}})
    nul = Upstream("commit", up.did, TRACK, commit={**up.commit, "rkey": "3kccccccccc22",
                                                     "record": {**up.commit["record"], "title": "a\x00b"}})
    future = Upstream("commit", up.did, TRACK, commit={**up.commit, "rkey": "3kddddddddd22", "rev": "zzzzzzzzzzzzz"})
    out = await rig.ingest.handle([rig.frame(forged), rig.frame(nul), rig.frame(future)])
    assert out.appended == 3
    forgeries = await rig.rows("SELECT kind, rev, payload FROM repo_event ORDER BY seq")
    assert [(k, r) for k, r, _ in forgeries] == [("forged", up.commit["rev"])] * 2
    assert forgeries[0][2]["reason"].startswith("cid mismatch: event says ")
    assert forgeries[0][2]["record"]["title"] == "Fake" and forgeries[0][2]["path"] == f"{TRACK}/3kaaaaaaaaa22"
    assert forgeries[1][2]["record"] is None  # U+0000: logged without its body
    assert await rig.rows("SELECT rkey, rejected FROM record_event") == [("3kddddddddd22", BAD_REV)]
    # Nothing trustworthy from this repo yet: not tracked, no identity looked up.
    assert mallory.did not in rig.ingest.tracked

    genuine = await rig.ingest.handle([rig.frame(up)])
    assert genuine.appended == 2  # identity + record
    await Projector(project_unverified=True).catch_up(conn)
    assert await rig.rows("SELECT title FROM track") == [("Real",)]


async def test_identity_and_account_only_for_tracked_repos(conn: psycopg.AsyncConnection) -> None:
    rig = Rig(conn)
    bob, stranger = rig.repo("bob.test"), rig.repo("stranger.test")
    frames = rig.frames(stranger.identity(), stranger.account(False, "deactivated"),
                        bob.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track("His"))]),
                        bob.identity(handle="robert.test"), bob.account(False, "deleted"))
    out = await rig.ingest.handle(frames)
    assert out.last_seq == rig.seq
    assert await rig.rows("SELECT did, kind, payload->>'handle', payload->>'status' FROM repo_event ORDER BY seq") == [
        (bob.did, "identity", "bob.test", None), (bob.did, "identity", "robert.test", None),
        (bob.did, "account", None, "deleted")]
    await Projector(project_unverified=True).catch_up(conn)
    assert await rig.rows("SELECT status FROM actor WHERE did = %s", bob.did) == [("deleted",)]
    assert await rig.rows("SELECT count(*) FROM track") == [(0,)]


async def test_tracked_set_survives_a_restart(conn: psycopg.AsyncConnection) -> None:
    rig = Rig(conn)
    carol = rig.repo("carol.test")
    await rig.ingest.handle(rig.frames(carol.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track("Hers"))])))
    fresh = JetstreamIngest(conn, source=SOURCE, version="v2", resolver=rig.resolver, validator=VALIDATOR)
    await fresh.load_tracked()
    assert carol.did in fresh.tracked
    rig.ingest = fresh
    out = await fresh.handle(rig.frames(carol.account(False, "deactivated")))
    assert out.appended == 1


async def test_sync_enrols_the_repo_for_a_verified_resync(conn: psycopg.AsyncConnection) -> None:
    from ingester.pipeline.gate import ResyncGate

    rig = Rig(conn)
    gate = ResyncGate()
    enrolled: list[tuple[str, str]] = []
    gate.on_enroll(lambda did, reason: enrolled.append((did, reason)))
    rig.ingest.gate = gate
    bob, stranger = rig.repo("bob.test"), rig.repo("stranger.test")
    await rig.ingest.handle(rig.frames(bob.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track("His"))]),
                                       bob.sync(), stranger.sync()))
    assert enrolled == [(bob.did, "#sync (jetstream)")]  # only repos we follow
    assert await rig.rows("SELECT did, kind FROM repo_event WHERE kind = 'sync'") == [(bob.did, "sync")]
