"""Bluesky profiles (`app.bsky.actor.profile/self`) of tracked accounts: scope, proof, validation, projection."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db.schema import bsky_profile
from core.events import Commit, RecordEvent, Skipped, op_in_scope
from ingester.decode.dagjson import record_cid
from ingester.decode.frames import decode_frame
from ingester.decode.jetstream import JetstreamCommit, decode_jetstream
from ingester.eventlog.append import append_batch
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector
from ingester.validate.records import RecordValidator
from tests.ingester import events as ev
from tests.ingester.framekit import Net, track
from tests.ingester.test_jetstream_pipeline import Rig as JetRig
from tests.ingester.test_pipeline import Rig, rig  # noqa: F401  (fixture)

PROFILE = "app.bsky.actor.profile"
A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
AVATAR_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
VALIDATOR = RecordValidator()


def avatar(mime: str = "image/jpeg", size: int = 1234) -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": AVATAR_CID}, "mimeType": mime, "size": size}


def bsky(display: Any = "Alice", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"$type": PROFILE, **extra}
    if display is not None:
        out["displayName"] = display
    return out


def checked(did: str, rev: str, record: dict[str, Any], rkey: str = "self", action: str = "create") -> RecordEvent:
    """A log row as the pipeline writes it: validated, rejected with the reason when invalid."""
    e = ev.put(did, PROFILE, rkey, rev, record, action=action)
    return RecordEvent(e.did, e.collection, e.rkey, e.rev, e.action, e.cid, e.record, e.source, e.source_seq,
                       e.verified, VALIDATOR.check(PROFILE, rkey, record))


async def rows(conn: psycopg.AsyncConnection, sql: str = "SELECT did, display_name, description, avatar_cid, "
               "avatar_mime FROM bsky_profile ORDER BY did") -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        out = await cur.fetchall()
    await conn.commit()
    return out


# ---------------------------------------------------------------- scope


def test_scope_predicate() -> None:
    assert op_in_scope("fm.plyr.track", "3kaaaaaaaaa22", False)
    assert op_in_scope(PROFILE, "self", True)
    assert not op_in_scope(PROFILE, "self", False)  # not the whole network
    assert not op_in_scope(PROFILE, "other", True)  # one record key only
    assert not op_in_scope("app.bsky.feed.post", "self", True)


def test_firehose_profile_op_is_kept_only_for_tracked_repos() -> None:
    alice = Net().repo()
    frame = alice.commit([("create", f"{PROFILE}/self", bsky()), ("create", f"{PROFILE}/other", bsky("x"))])
    assert isinstance(decode_frame(frame), Skipped)
    c = decode_frame(frame, {alice.did})
    assert isinstance(c, Commit) and c.proof_error is None
    assert [(o.collection, o.rkey, o.record) for o in c.ops] == [(PROFILE, "self", bsky())]


def test_a_commit_that_makes_the_repo_tracked_keeps_its_profile_op() -> None:
    alice = Net().repo()
    c = decode_frame(alice.commit([("create", "fm.plyr.track/3kaaaaaaaaa22", track()),
                                   ("create", f"{PROFILE}/self", bsky())]))
    assert isinstance(c, Commit) and {o.collection for o in c.ops} == {"fm.plyr.track", PROFILE}


def test_a_profile_op_the_signed_mst_does_not_hold_is_a_proof_error() -> None:
    alice = Net().repo()
    alice.commit([("create", "fm.plyr.track/3kaaaaaaaaa22", track())])
    root = alice.data
    c = decode_frame(alice.commit([("update", f"{PROFILE}/self", bsky())], data=root, advance=False), {alice.did})
    assert isinstance(c, Commit) and c.proof_error is not None


def _js(did: str, rkey: str = "self", collection: str = PROFILE) -> bytes:
    record = bsky()
    return orjson.dumps({"did": did, "time_us": 1_700_000_000_000_000, "kind": "commit", "commit": {
        "rev": "3kaaaaaaaaa22", "operation": "create", "collection": collection, "rkey": rkey,
        "record": record, "cid": record_cid(record)}})


def test_jetstream_profile_events_are_kept_only_for_tracked_repos() -> None:
    assert isinstance(decode_jetstream(_js(A), "v1"), Skipped)
    assert isinstance(decode_jetstream(_js(A, "other"), "v1", {A}), Skipped)
    got = decode_jetstream(_js(A), "v1", {A})
    assert isinstance(got, JetstreamCommit) and got.op.record == bsky() and got.cid_error is None


# ---------------------------------------------------------------- validation (hostile values)


@pytest.mark.parametrize(("record", "reason"), [
    (bsky("x" * 65), "displayName: string longer than maxGraphemes 64"),
    (bsky("👩‍👩‍👧‍👦" * 65), "displayName: string longer than maxLength 640"),
    (bsky(description="d" * 257), "description: string longer than maxGraphemes 256"),
    (bsky("a" * 10_000_000), "displayName: string longer than maxLength 640"),
    (bsky(42), "displayName: expected string"),
    (bsky(["Alice"]), "displayName: expected string"),
    (bsky(avatar=avatar("text/html")), "avatar: blob mimeType 'text/html' not accepted"),
    (bsky(avatar=avatar("image/svg+xml")), "avatar: blob mimeType 'image/svg+xml' not accepted"),
    (bsky(avatar=avatar(size=5_000_000)), "avatar: blob size 5000000 exceeds maxSize"),
    (bsky(avatar="https://evil.example/a.png"), "avatar: expected blob"),
    (bsky(avatar={"$type": "blob", "ref": {"$link": "not a cid"}, "mimeType": "image/png", "size": 1}),
     "avatar: invalid blob"),
    (bsky(labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": 1}]}), "labels.values[0].val"),
    (bsky(pinnedPost={"uri": "nope", "cid": "nope"}), "pinnedPost.uri: invalid at-uri"),
    (bsky(createdAt="yesterday"), "createdAt: invalid datetime"),
    (bsky(website="javascript alert"), "website: invalid uri"),
    ({**bsky(), "$type": "app.bsky.actor.profilex"}, "$type"),
])
def test_invalid_profiles_are_rejected(record: dict[str, Any], reason: str) -> None:
    got = VALIDATOR.check(PROFILE, "self", record)
    assert got is not None and got.startswith(reason), got


def test_profile_under_another_rkey_is_rejected() -> None:
    assert VALIDATOR.check(PROFILE, "other", bsky()) == "rkey 'other' is not 'self' (literal:self)"


def test_a_full_bluesky_profile_is_valid() -> None:
    record = bsky("Älice 🎧", description="makes sounds\nin the rain", pronouns="she/her",
                  website="https://alice.example", avatar=avatar("image/png"), banner=avatar(),
                  labels={"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!no-unauthenticated"}]},
                  createdAt="2024-01-01T00:00:00.000Z")
    assert VALIDATOR.check(PROFILE, "self", record) is None
    assert VALIDATOR.check(PROFILE, "self", {"$type": PROFILE}) is None  # nothing is required


# ---------------------------------------------------------------- projection


async def test_create_update_delete(conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [checked(A, "3k0000000001a", bsky("Alice", description="hi", avatar=avatar()))])
    await Projector().catch_up(conn)
    assert await rows(conn) == [(A, "Alice", "hi", AVATAR_CID, "image/jpeg")]
    await append_batch(conn, [checked(A, "3k0000000002a", bsky(""), action="update")])  # cleared name, no avatar
    await Projector().catch_up(conn)
    assert await rows(conn) == [(A, None, None, None, None)]
    await append_batch(conn, [ev.delete(A, PROFILE, "self", "3k0000000003a")])
    await Projector().catch_up(conn)
    assert await rows(conn) == []
    # a replayed older write never resurrects the deleted profile
    await append_batch(conn, [ev.put(A, PROFILE, "self", "3k0000000001a", bsky("Older"), source="other")])
    await Projector().catch_up(conn)
    assert await rows(conn) == []


async def test_invalid_and_other_rkeys_are_never_projected(conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [
        checked(A, "3k0000000001a", bsky("Alice")),
        checked(A, "3k0000000002a", bsky("x" * 65), action="update"),
        checked(A, "3k0000000003a", bsky(avatar=avatar("text/html")), action="update"),
        checked(A, "3k0000000004a", bsky("Sneaky"), rkey="other"),
        checked(B, "3k0000000001b", bsky(42)),
    ])
    await Projector().catch_up(conn)
    assert await rows(conn) == [(A, "Alice", None, None, None)]


async def test_deleted_account_purges_the_profile(conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [ev.identity(A, "alice.test"), checked(A, "3k0000000001a", bsky("Alice")),
                              checked(B, "3k0000000001b", bsky("Bob"))])
    await Projector().catch_up(conn)
    await append_batch(conn, [ev.account(A, False, "deleted")])
    await Projector().catch_up(conn)
    assert [r[0] for r in await rows(conn)] == [B]
    # a replay of the pre-deletion write (another source) stays purged
    await append_batch(conn, [ev.put(A, PROFILE, "self", "3k0000000001a", bsky("Alice"), source="other")])
    await Projector().catch_up(conn)
    assert [r[0] for r in await rows(conn)] == [B]


async def test_rebuild_equals_live(db_url: str, conn: psycopg.AsyncConnection) -> None:
    projector = Projector(batch_size=2)
    for i in range(6):
        did = A if i % 2 else B
        rev = f"3k00000000{i:02d}0"
        await append_batch(conn, [checked(did, rev, bsky(f"name {i}", avatar=avatar()), action="update")])
        if i == 5:
            await append_batch(conn, [ev.delete(did, PROFILE, "self", f"3k00000000{i:02d}5")])
        await projector.catch_up(conn)
    live = await digest(conn)
    assert any(t.table == "bsky_profile" and t.rows == 1 for t in live.tables)
    await conn.commit()
    await rebuild(db_url, batch_size=5, show_progress=False)
    assert (await digest(conn)).sha256 == live.sha256


async def test_migration_matches_schema(conn: psycopg.AsyncConnection) -> None:
    got = await rows(conn, "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns"
                           " WHERE table_name = 'bsky_profile' ORDER BY ordinal_position")
    assert got == [(c.name, bool(c.nullable)) for c in bsky_profile.columns]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=80),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=8))
def test_any_value_in_any_field_is_valid_or_rejected_never_a_crash(value: Any) -> None:
    for field in ("displayName", "description", "avatar", "labels", "pinnedPost", "createdAt"):
        reason = VALIDATOR.check(PROFILE, "self", {"$type": PROFILE, field: value})
        assert reason is None or isinstance(reason, str)


# ---------------------------------------------------------------- the whole firehose path


async def test_firehose_profile_reaches_the_projection_for_tracked_repos_only(rig: Rig) -> None:  # noqa: F811
    alice, bob = rig.repo("alice.test"), rig.repo("bob.test")
    await rig.handle(
        alice.commit([("create", "fm.plyr.track/3kaaaaaaaaa22", track())], since=None),
        alice.commit([("create", f"{PROFILE}/self", bsky("Alice", avatar=avatar()))]),
        bob.commit([("create", f"{PROFILE}/self", bsky("Bob"))], since=None),  # bob is not tracked
        alice.commit([("create", f"{PROFILE}/self2", bsky("ignored"))]),
    )
    await rig.project()
    assert await rows(rig.conn) == [(alice.did, "Alice", None, AVATAR_CID, "image/jpeg")]
    assert [r for r in await rig.records(alice.did) if r[0] == PROFILE] == [(PROFILE, "self", "create", True, None)]
    assert await rig.records(bob.did) == []
    await rig.handle(alice.commit([("update", f"{PROFILE}/self", bsky("x" * 100))]))  # invalid: rejected
    await rig.project()
    assert (await rows(rig.conn))[0][1] == "Alice"
    await rig.handle(alice.commit([("delete", f"{PROFILE}/self", None)]))
    await rig.project()
    assert await rows(rig.conn) == []


# ---------------------------------------------------------------- Jetstream


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_jetstream_keeps_profiles_of_tracked_repos_only(conn: psycopg.AsyncConnection, version: str) -> None:
    jet = JetRig(conn, version)
    alice, bob = jet.repo("alice.test"), jet.repo("bob.test")
    await jet.ingest.handle(jet.frames(
        alice.commit([("create", "fm.plyr.track/3kaaaaaaaaa22", track())]),
        alice.commit([("create", f"{PROFILE}/self", bsky("Alice"))]),  # tracked since the frame before
        bob.commit([("create", f"{PROFILE}/self", bsky("Bob"))]),  # never tracked: the whole network's
    ))
    await jet.ingest.handle(jet.frames(alice.commit([("update", f"{PROFILE}/self", bsky("Alice 2"))])))
    assert await jet.rows("SELECT did, action, verified, rejected FROM record_event WHERE collection = %s "
                          "ORDER BY seq", PROFILE) == [(alice.did, "create", False, None),
                                                       (alice.did, "update", False, None)]
    await Projector(project_unverified=True).catch_up(conn)
    assert await rows(conn) == [(alice.did, "Alice 2", None, None, None)]
