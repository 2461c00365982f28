"""The `appview` command as a user runs it (a subprocess with DATABASE_URL), on a real Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from core.db.connect import connect
from ingester.eventlog.append import append_batch
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def appview(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=db_url, LOG_FORMAT="json")
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


async def test_rebuild_and_digest(db_url: str) -> None:
    async with await connect(db_url) as conn:
        await append_batch(conn, [ev.identity(A, "alice.test"),
                                  ev.put(A, "fm.plyr.track", "3kaaaaaaaaa22", "3k0000000001a", ev.track("one"))])
    migrate = appview(db_url, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    rebuilt = appview(db_url, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    digest = appview(db_url, "digest")
    assert digest.returncode == 0, digest.stderr
    # the rebuild prints the digest it produced; a fresh `digest` agrees, and the track is there
    assert digest.stdout.strip().splitlines()[-1] == rebuilt.stdout.strip().splitlines()[-1]
    assert [line.split()[1] for line in digest.stdout.splitlines() if line.startswith("track ")] == ["1"]
    content = appview(db_url, "digest", "--mode", "content")
    assert "TOTAL (content)" in content.stdout
    with psycopg.connect(db_url) as c:
        assert c.execute("SELECT title FROM track").fetchall() == [("one",)]


def test_bad_command_is_a_clear_usage_error(db_url: str) -> None:
    result = appview(db_url, "frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_help_for_every_command() -> None:
    for command in ("run", "ingest", "serve", "migrate", "rebuild", "digest", "backfill", "demo"):
        out = subprocess.run([sys.executable, "-m", "cli", command, "--help"], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and f"usage: appview {command}" in out.stdout, out.stderr
        assert "RuntimeDirWarning" not in out.stderr


def test_one_ingester_per_data_directory(tmp_path: Path) -> None:
    from cli.database import AlreadyRunning, hold_ingest_lock

    held = hold_ingest_lock(tmp_path)
    try:
        # a second process on the same data directory is refused with a message that says what to do
        env = dict(os.environ, APPVIEW_DATA_DIR=str(tmp_path), LOG_FORMAT="json")
        env.pop("DATABASE_URL", None)
        second = subprocess.run([sys.executable, "-m", "cli", "ingest"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2 and "already runs" in second.stderr and str(os.getpid()) in second.stderr
        with pytest.raises(AlreadyRunning):
            hold_ingest_lock(tmp_path)
    finally:
        held.close()
    hold_ingest_lock(tmp_path).close()  # released with its holder
