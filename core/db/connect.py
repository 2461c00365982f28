"""psycopg connections: one place that configures JSON and time zone handling."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads

from core.db.urls import libpq_url

set_json_dumps(orjson.dumps)
set_json_loads(orjson.loads)

# Appenders hold this transaction lock so that commit order equals `seq` order: a tailing
# reader that has seen seq N can never later see a smaller seq commit.
LOG_APPEND_LOCK = 0x706C79720001
PROJECTOR_LOCK = 0x706C79720002
# Held for the whole migration transaction: concurrent `appview migrate`/`run` starts apply it once, not race.
MIGRATE_LOCK = 0x706C79720010
NOTIFY_CHANNEL = "event_log"
# Payload: the projector's new log position, sent in the transaction that commits it.
PROJECTION_CHANNEL = "projection"


async def connect(url: str, *, search_path: str | None = None, **kwargs: Any) -> psycopg.AsyncConnection:
    options = "-c timezone=UTC"
    if search_path:
        options += f" -c search_path={search_path}"
    return await psycopg.AsyncConnection.connect(libpq_url(url), options=options, **kwargs)
