"""Which Postgres to use: DATABASE_URL as given, else the embedded one under the data directory."""

from __future__ import annotations

from typing import Any

from core.db.embedded import start_embedded
from core.settings import CoreSettings


def resolve_database(settings: CoreSettings) -> tuple[str, Any]:
    """(URL, handle keeping the embedded server alive or None)."""
    if settings.database_url:
        return settings.database_url, None
    pgdata = (settings.data_dir / "pg").resolve()
    return start_embedded(pgdata, database="appview")
