"""The real reference PDS, followed directly (so as a PDS, not a relay): its own accounts' #account and
#identity are applied, and a repo frozen by a bogus stored rev is repaired by a verified getRepo snapshot."""

from __future__ import annotations

import uuid

from core.db.connect import connect
from tests.e2e.conftest import Query, RunningIngester, eventually, ingester_settings
from tests.localnet.peer import Localnet, Xrpc

NOW = "2026-11-24T12:00:00.000Z"
FAR_FUTURE = "zzzzzzzzzzzzz"


def track(title: str) -> dict[str, object]:
    return {"$type": "fm.plyr.track", "title": title, "artist": "Alice", "fileType": "mp3",
            "audioUrl": "https://audio.plyr.fm/a.mp3", "createdAt": NOW}


async def test_a_bogus_stored_rev_is_repaired_from_the_real_pds(xrpc: Xrpc, localnet: Localnet, q: Query,
                                                                db_url: str) -> None:
    running = RunningIngester(ingester_settings(db_url, localnet), db_url)
    await running.start()
    alice = await xrpc.create_account(f"alice{uuid.uuid4().hex[:6]}.test")
    await xrpc.create(alice, "fm.plyr.track", track("one"))
    await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(1,)], alice.did)
    # its own #account frames count: the PDS hosts alice
    await xrpc.call("com.atproto.server.deactivateAccount", {}, alice)
    await eventually(q, "SELECT status FROM actor WHERE did = %s", [("deactivated",)], alice.did)
    await xrpc.call("com.atproto.server.activateAccount", None, alice)
    await eventually(q, "SELECT status FROM actor WHERE did = %s", [("active",)], alice.did)
    await running.stop()

    # An earlier bug stored a rev from the far future: every genuine commit would look like a duplicate.
    async with await connect(db_url) as conn:
        await conn.execute("UPDATE repo_state SET rev = %s WHERE did = %s", (FAR_FUTURE, alice.did))
        await conn.commit()

    running = RunningIngester(ingester_settings(db_url, localnet), db_url)
    await running.start()
    try:
        await xrpc.create(alice, "fm.plyr.track", track("two"))
        await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(2,)], alice.did)
        # the resync's verified snapshot replaced the bogus chain
        await eventually(q, "SELECT status FROM backfill_job WHERE did = %s", [("done",)], alice.did, timeout=60)
        await eventually(q, "SELECT sync_status, rev < %s FROM repo_state WHERE did = %s",
                         [("synchronized", True)], FAR_FUTURE, alice.did, timeout=60)
        await xrpc.create(alice, "fm.plyr.track", track("three"))
        await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(3,)], alice.did)
    finally:
        await running.stop()
