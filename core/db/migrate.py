"""Run the Alembic migrations programmatically (no alembic.ini needed), or wait for someone else to.

`appview migrate` (and every command while `MIGRATE_ON_START` is true) upgrades under the advisory lock
taken in `migrations/env.py`. Deployments that run the migration as a separate job (compose's one-shot
service, a Kubernetes Job) set `MIGRATE_ON_START=false`: the long-running processes then only *wait* for
the schema to reach this build's head (`wait_for_head`), so an API replica never runs DDL and never
starts on a schema it does not know.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import OperationalError

from core.db.urls import sqlalchemy_url
from core.retry import Backoff

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class SchemaNotAtHead(Exception):
    """The database's schema is not the one this build needs, and this process may not migrate it."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def schema_revisions(url: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(revisions the database is at, this build's heads, every revision this build knows)."""
    script = ScriptDirectory.from_config(alembic_config(url))
    known = frozenset(r.revision for r in script.walk_revisions())
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return current, frozenset(script.get_heads()), known


def _names(revs: frozenset[str]) -> str:
    return ",".join(sorted(revs)) or "nothing (empty database)"


def wait_for_head(url: str, timeout_s: float, on_wait: Callable[[str], None] = lambda _: None) -> None:
    """Return once the database is at this build's head; SchemaNotAtHead after `timeout_s`.

    A schema *newer* than this build (a revision it does not know) fails at once: waiting cannot fix it.
    An unreachable database is waited for like a migration still running (a job starting beside us).
    """
    deadline = time.monotonic() + timeout_s
    backoff = Backoff(base_s=0.5, cap_s=5.0)
    while True:
        try:
            current, heads, known = schema_revisions(url)
        except OperationalError as e:
            problem = f"database unreachable ({str(e.orig).strip().splitlines()[0][:200]})"
        else:
            if current == heads:
                return
            if unknown := current - known:
                raise SchemaNotAtHead(
                    f"the database schema is at revision {_names(unknown)}, which this build does not know "
                    f"(it needs {_names(heads)}): a newer release migrated it; run that release")
            problem = f"database schema at {_names(current)}, this build needs {_names(heads)}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SchemaNotAtHead(
                f"{problem} after waiting {timeout_s:g} s (MIGRATE_WAIT_S): run `appview migrate` (the migrate job) "
                f"against this database, or set MIGRATE_ON_START=true to let this process migrate it")
        on_wait(problem)
        time.sleep(min(backoff.next_delay(), remaining))
