"""Settings are checked at start: a bad value is one clear line naming the environment variable and what is
allowed (the CLI exits 2), and every value accepted is one the components work with."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_settings import BaseSettings

from appview.app import create_app
from appview.settings import AppviewSettings
from core.blobstore.local import LocalStore
from core.retry import Backoff, pause
from core.settings import SettingsError, _base_type, env_name, load_settings
from core.settings_checks import split_database_urls
from ingester.blobs.tasks import BlobTasks
from ingester.service import Ingester
from ingester.settings import IngesterSettings

ROOT = Path(__file__).resolve().parents[2]
CLASSES: tuple[type[BaseSettings], ...] = (IngesterSettings, AppviewSettings)


def numeric_fields() -> list[tuple[type[BaseSettings], str]]:
    return sorted({(cls, name) for cls in CLASSES for name, info in cls.model_fields.items()
                   if _base_type(info.annotation) in (int, float)}, key=lambda x: (x[0].__name__, x[1]))


def load(cls: type[BaseSettings], env: dict[str, str]) -> Any:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in {e.upper() for e in env}}
    with mock.patch.dict(os.environ, clean | env, clear=True):
        return load_settings(cls)


@pytest.mark.parametrize(("var", "value", "says"), [
    ("PROJECTOR_BATCH", "0", "must be an integer from 1 to 1000000"),  # batch sizes ≥ 1
    ("INGEST_BATCH_MAX", "-5", "must be an integer from 1 to 20000"),
    ("BACKFILL_CONCURRENCY", "0", "must be an integer from 1 to 1024"),  # concurrency ≥ 1
    ("BLOB_FETCH_TIMEOUT_S", "0", "must be a number > 0 and ≤ 86400"),  # timeouts > 0
    ("BACKFILL_TIMEOUT_S", "nan", "must be a number > 0"),
    ("HEALTH_TIMEOUT_S", "inf", "must be a number > 0"),
    ("INGEST_LEASE_S", "0.5", "must be a number ≥ 1 and ≤ 600"),  # failover: a lease shorter than a renewal round
    ("INGEST_STANDBY_POLL_S", "0", "must be a number ≥ 0.05 and ≤ 60"),
    ("PORT", "70000", "must be an integer from 1 to 65535"),  # ports
    ("METRICS_PORT", "0", "must be an integer from 1 to 65535 (or empty for unset)"),
    ("PROJECTOR_BATCH", "lots", "must be an integer"),
    ("FIREHOSE_HOSTS", "https://bsky.network", "must be a wss/ws URL"),  # URL schemes
    ("PLC_URL", "file:///etc/passwd", "must be a https/http URL"),
    ("PUBLIC_URL", "http://", "has no valid host"),
    ("FIREHOSE_HOSTS", "wss://ok.example,wss://bad host", "has no valid host"),  # comma lists
    ("BACKFILL_PDS_HOSTS", "pds.example", "must be a https/http URL"),
    ("AUDIO_URL_ALLOWED_HOSTS", "audio.plyr.fm,https://x.example/", "is not a host name"),
    ("LABELERS", "did:plc:", "is not a valid DID"),
    ("S3_ENDPOINT_URL", "https://s3.example:99999", "not a valid URL"),
    ("JETSTREAM_VERSION", "v9", "must be one of v1, v2"),  # enums
    ("READY_REQUIRES_INGEST", "maybe", "must be one of auto, true, false"),
    ("LOG_LEVEL", "verbose", "must be one of debug, info, warning, error, critical"),
    ("RESYNC_ENABLED", "sometimes", "must be true or false"),
    ("HOST", "not a host", "is not an IP address or host name"),
    ("SERVICE_DID", "web:example", "is not a valid DID"),
    ("DATABASE_URL", "mysql://root:hunter2@db/x", "must be a postgresql://"),
    ("DATABASE_READ_URL", "postgresql://u:hunter2@r1/x, mysql://root:hunter2@db/x", "URL 2 of 2 is not a postgresql"),
    ("DATABASE_READ_MAX_LAG_S", "0", "must be a number > 0"),
    ("S3_BUCKET", "a", "is not a bucket name"),
    ("APPVIEW_DATA_DIR", " ", "must not be empty"),
])
def test_each_class_of_bad_value_is_one_line_naming_the_variable(var: str, value: str, says: str) -> None:
    messages = []
    for cls in CLASSES:
        if not any(env_name(cls, f) == var for f in cls.model_fields):
            continue
        with pytest.raises(SettingsError) as e:
            load(cls, {var: value})
        messages.append(str(e.value))
    assert messages, f"{var} is no setting"
    for m in messages:
        assert m.startswith(f"invalid setting {var}") and "\n" not in m and says in m, m
        assert "hunter2" not in m  # secrets are never echoed


def test_good_values_are_accepted_and_blank_optionals_mean_unset() -> None:
    s = load(IngesterSettings, {"METRICS_PORT": "", "BACKFILL_RELAY_URL": " ", "PROJECTOR_BATCH": "1",
                                "FIREHOSE_HOSTS": "wss://a.example, localhost:2583,wss://a.example",
                                "LABELERS": "did:plc:ar7c4by46qjdydhdevvrndac,https://mod.example",
                                "LOG_LEVEL": "DEBUG", "BLOB_RELEASE_GRACE_S": "0"})
    assert s.metrics_port is None and s.backfill_relay_url is None and s.projector_batch == 1
    assert s.hosts == ["wss://a.example", "localhost:2583"]  # duplicates followed once
    assert s.log_level == "debug" and s.blob_release_grace_s == 0
    a = load(AppviewSettings, {"PUBLIC_URL": "https://api.example", "PORT": "443", "HOST": "::"})
    assert a.service_did == "did:web:api.example"
    r = load(AppviewSettings, {"DATABASE_READ_URL": "postgresql://u:pw@r1,r2:5433/db, postgres://r3/db"})
    assert split_database_urls(r.database_read_url) == ["postgresql://u:pw@r1,r2:5433/db", "postgres://r3/db"]


def test_the_cli_exits_2_with_every_bad_variable_and_no_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, PROJECTOR_BATCH="0", PORT="http", S3_SECRET_ACCESS_KEY="", APPVIEW_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "cli", "serve"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "appview: invalid setting PROJECTOR_BATCH='0': must be an integer from 1 to 1000000",
        "appview: invalid setting PORT='http': must be an integer from 1 to 65535",
    ]
    assert not (tmp_path / "pg").exists()  # nothing started


NUMERIC = numeric_fields()
VALUES = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "1e309", "0x10", "1_000", "nan", "-0", "inf", "1.5", " 7 ", "١٢", "1e-300",
                     "65535", "65536", "9" * 40]),
    st.text(max_size=12),
)


def within_bounds(cls: type[BaseSettings], field: str, value: Any) -> bool:
    info = cls.model_fields[field]
    if value is None:
        return True
    if not math.isfinite(value):
        return False
    bounds = list(info.metadata) + [m for a in getattr(info.annotation, "__args__", ())
                                    for f in getattr(a, "__metadata__", ()) for m in getattr(f, "metadata", ())]
    return all((not isinstance(b, Ge) or value >= b.ge) and (not isinstance(b, Gt) or value > b.gt)
               and (not isinstance(b, Le) or value <= b.le) and (not isinstance(b, Lt) or value < b.lt)
               for b in bounds)


async def components_work(s: Any, tmp_path: Path) -> None:
    """Build what consumes the numeric settings, and use the delays: nothing may raise or hang."""
    stop = asyncio.Event()
    stop.set()
    if isinstance(s, IngesterSettings):
        ingester = Ingester(s, "postgresql://unused/x")
        assert ingester.projector.batch_size == s.projector_batch
        blobs = BlobTasks(s, "postgresql://unused/x", LocalStore(tmp_path), ingester.resolver)
        for delay in (s.supervisor_backoff_cap_s, s.health_heartbeat_s, s.blob_scan_interval_s,
                      s.backfill_retry_interval_s, s.playability_check_interval_s):
            assert 0 < Backoff(cap_s=delay).next_delay() <= delay
            await asyncio.wait_for(pause(stop, delay), 5)
        await blobs.aclose()
        await ingester.backfiller.fetcher.aclose()
        await ingester.handles.aclose()
        await ingester.resolver.aclose()
    else:
        create_app(s, "postgresql://unused/x")
        await asyncio.wait_for(pause(stop, s.health_timeout_s), 5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(NUMERIC), raw=VALUES)
def test_random_numeric_values_are_accepted_and_work_or_named(target: tuple[type[BaseSettings], str], raw: str,
                                                              tmp_path: Path) -> None:
    cls, field = target
    var = env_name(cls, field)
    if "\x00" in raw:
        return  # an environment variable cannot hold NUL
    try:
        s = load(cls, {var: raw})
    except SettingsError as e:
        assert str(e).startswith(f"invalid setting {var}=") and "\n" not in str(e), str(e)
        assert "must be" in str(e)
        return
    value = getattr(s, field)
    assert within_bounds(cls, field, value), (var, raw, value)
    asyncio.run(components_work(s, tmp_path))


def test_every_numeric_setting_has_bounds() -> None:
    """No unbounded number: each has a lower and an upper bound (an absurd value fails at start)."""
    for cls, field in NUMERIC:
        with pytest.raises(SettingsError):
            load(cls, {env_name(cls, field): "-1"})
        with pytest.raises(SettingsError):
            load(cls, {env_name(cls, field): "1e30"})


@pytest.mark.parametrize("batch", ["1", "1000000"])
async def test_projector_batch_at_its_bounds_projects(db_url: str, batch: str) -> None:
    """PROJECTOR_BATCH=0 used to be an IndexError retried forever; its extremes now both work."""
    from core.db.connect import connect
    from ingester.eventlog.append import append_batch
    from ingester.projection.runner import Projector
    from tests.ingester import events as ev

    s = load(IngesterSettings, {"PROJECTOR_BATCH": batch})
    did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    async with await connect(db_url) as conn:
        await append_batch(conn, [ev.put(did, "fm.plyr.track", f"3kaaaaaaaaa2{i}", f"3k000000000{i}a", ev.track())
                                  for i in range(3)])
        assert await Projector(batch_size=s.projector_batch).catch_up(conn) == 3
        assert (await (await conn.execute("SELECT count(*) FROM track")).fetchone()) == (3,)
