"""The vocabulary of `component_health`, the heartbeat table the ingester writes and the API reads.

Both sides speak it through the database only (they may run on different machines), so the words
live in the kernel.
"""

from __future__ import annotations

from typing import Literal

# source: a network subscription (firehose, Jetstream, labeler); projector: the log → projections fold;
# worker: anything else long-running (resync/backfill, blob mirror, playability checker, heartbeat).
ComponentKind = Literal["source", "projector", "worker"]
# starting: (re)started, not yet reporting up; up: running (a source: connected); connecting: a source
# running but not connected; restarting: died, waiting out its backoff; stopped: shut down on purpose.
ComponentState = Literal["starting", "up", "connecting", "restarting", "stopped"]

UPSERT_SQL = """
INSERT INTO component_health (component, kind, state, detail, since, updated_at)
SELECT c, k, s, d, now(), now() FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[]) AS u(c, k, s, d)
ON CONFLICT (component) DO UPDATE SET
    kind = EXCLUDED.kind, state = EXCLUDED.state, detail = EXCLUDED.detail, updated_at = now(),
    since = CASE WHEN component_health.state = EXCLUDED.state THEN component_health.since ELSE now() END
"""
