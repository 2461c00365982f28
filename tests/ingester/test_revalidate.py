"""`appview rebuild --revalidate`: the log's verdicts follow the lexicons, both ways, deterministically."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from core.db.connect import connect
from core.events import RecordEvent, RepoEvent
from core.lexicon import LEXICON_DIR
from ingester.eventlog.append import append_batch
from ingester.pipeline.jetstream import BAD_REV
from ingester.projection.digest import Digest, digest
from ingester.projection.rebuild import rebuild
from ingester.validate.records import NUL, RecordValidator, load_record_lexicons
from ingester.validate.revalidate import NOT_LEXICAL, Revalidation, revalidate
from tests.cli.test_commands import appview
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
LONG = "a title longer than five bytes"


def broken_lexicons(tmp: Path) -> RecordValidator:
    """The real lexicons, but a track title may be at most 5 bytes (a lexicon bug)."""
    root = tmp / "lexicons"
    shutil.copytree(LEXICON_DIR, root)
    path = root / "fm" / "plyr" / "track.json"
    doc = json.loads(path.read_text())
    doc["defs"]["main"]["record"]["properties"]["title"]["maxLength"] = 5
    path.write_text(json.dumps(doc))
    return RecordValidator(load_record_lexicons(root))


async def log_tracks(url: str, judge: RecordValidator) -> None:
    """Two tracks judged at arrival by `judge`, one unstorable row and one whose rev was bogus."""
    events: list[RecordEvent | RepoEvent] = [ev.identity(A, "alice.test")]
    for rkey, rev, title in (("3kaaaaaaaaa22", "3k0000000001a", LONG), ("3kaaaaaaaaa23", "3k0000000002a", "ok")):
        e = ev.put(A, "fm.plyr.track", rkey, rev, ev.track(title))
        events.append(dataclasses.replace(e, rejected=judge.check(e.collection, e.rkey, e.record)))
    events.append(dataclasses.replace(ev.put(A, "fm.plyr.track", "3kaaaaaaaaa24", "3k0000000003a", ev.track("x")),
                                      record=None, rejected=NUL))
    events.append(dataclasses.replace(ev.put(A, "fm.plyr.track", "3kaaaaaaaaa25", "3k0000000004a", ev.track("y")),
                                      verified=False, rejected=BAD_REV))
    async with await connect(url) as conn:
        await append_batch(conn, events)


async def titles_and_verdicts(url: str) -> tuple[list[str], list[str | None]]:
    async with await connect(url) as conn, conn.cursor() as cur:
        await cur.execute("SELECT title FROM track ORDER BY title")
        titles = [r[0] for r in await cur.fetchall()]
        await cur.execute("SELECT rejected FROM record_event ORDER BY seq")
        verdicts = [r[0] for r in await cur.fetchall()]
    return titles, verdicts


async def rejudge(url: str, validator: RecordValidator) -> Revalidation:
    async with await connect(url) as conn:
        result = await revalidate(conn, validator, page=1)
    await rebuild(url, show_progress=False)
    return result


def test_bad_rev_is_not_a_lexical_verdict() -> None:
    assert BAD_REV.startswith(NOT_LEXICAL)


async def test_a_lexicon_fix_re_accepts_and_a_regression_rejects(db_url: str, tmp_path: Path) -> None:
    broken, fixed = broken_lexicons(tmp_path), RecordValidator()
    await log_tracks(db_url, broken)
    await rebuild(db_url, show_progress=False)
    titles, verdicts = await titles_and_verdicts(db_url)
    assert titles == ["ok"] and verdicts[0] is not None and "maxLength" in verdicts[0]

    # the fix: the wrongly rejected track is projected; the unstorable row and the bad rev stay rejected
    result = await rejudge(db_url, fixed)
    assert (result.examined, result.reaccepted, result.newly_rejected, result.kept) == (2, 1, 0, 1)
    titles, verdicts = await titles_and_verdicts(db_url)
    assert titles == [LONG, "ok"] and verdicts == [None, None, NUL, BAD_REV]
    fixed_digest = (await _digest(db_url)).sha256

    # the same log and lexicons again: nothing changes, the same digest
    again = await rejudge(db_url, fixed)
    assert again.changed == 0 and (await _digest(db_url)).sha256 == fixed_digest

    # the reverse: a lexicon that now rejects a projected record takes it out
    result = await rejudge(db_url, broken)
    assert (result.reaccepted, result.newly_rejected) == (0, 1)
    titles, verdicts = await titles_and_verdicts(db_url)
    assert titles == ["ok"] and verdicts[0] is not None and verdicts[1:] == [None, NUL, BAD_REV]


async def test_judging_the_same_log_twice_gives_the_same_digest(db_url: str, tmp_path: Path) -> None:
    await log_tracks(db_url, broken_lexicons(tmp_path))
    first = await rejudge(db_url, RecordValidator())
    one = (await _digest(db_url)).sha256
    async with await connect(db_url) as conn, conn.cursor() as cur:  # undo: back to the arrival verdicts
        await cur.execute("UPDATE record_event SET rejected = 'title: string longer than maxLength 5 bytes'"
                          " WHERE record->>'title' = %s", (LONG,))
        await conn.commit()
    second = await rejudge(db_url, RecordValidator())
    assert first == second and (await _digest(db_url)).sha256 == one


@pytest.mark.parametrize("garbage", [[], "x", None, {"$type": "fm.plyr.track", "title": {"deep": [[[[]]]]}}])
async def test_hostile_bodies_are_judged_not_crashed_on(db_url: str, garbage: object) -> None:
    e = ev.put(A, "fm.plyr.track", "3kaaaaaaaaa22", "3k0000000001a", ev.track("t"))
    async with await connect(db_url) as conn:
        await append_batch(conn, [dataclasses.replace(e, record=garbage)])  # type: ignore[arg-type]
        result = await revalidate(conn)
    assert result.newly_rejected == (0 if garbage is None else 1)


async def test_the_command_reports_its_counts(db_url: str, tmp_path: Path) -> None:
    await log_tracks(db_url, broken_lexicons(tmp_path))
    done = appview(db_url, "rebuild", "--revalidate")
    assert done.returncode == 0, done.stderr
    assert "1 re-accepted, 0 newly rejected" in done.stdout and "TOTAL" in done.stdout


async def _digest(url: str) -> Digest:
    async with await connect(url) as conn:
        return await digest(conn)
