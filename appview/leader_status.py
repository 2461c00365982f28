"""/status `ingest`: which ingester instance leads (the lease, ingester/leadership.py) and every instance's role.

Read from the tables the ingesters write (`ingest_lease`, `ingest_instance`): the API never imports the ingester."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from pydantic import BaseModel

SHOWN_FOR_S = 3600  # instances seen this recently (a killed one stays visible, with its age, for a while)


class LeaderStatus(BaseModel):
    instance: str
    epoch: int  # grows by one at every takeover
    acquired_at: datetime | None
    expires_in_s: float  # < 0: the lease ran out (its holder is paused, cut off or dead): a standby takes over


class InstanceStatus(BaseModel):
    instance: str  # host:pid:nonce
    role: str  # leader | standby | stopped (as it last said)
    epoch: int | None
    started_at: datetime
    seen_s_ago: float


class IngestStatus(BaseModel):
    leader: LeaderStatus | None  # None: no ingester leads (none runs, or the last one stopped)
    instances: list[InstanceStatus]


async def read_ingest_status(conn: AsyncConnection) -> IngestStatus:
    async with conn.cursor() as cur:
        await cur.execute("SELECT holder, epoch, acquired_at, extract(epoch FROM expires_at - now())::float8"
                          " FROM ingest_lease WHERE name = 'ingest' AND holder IS NOT NULL")
        row = await cur.fetchone()
        leader = None if row is None else LeaderStatus(instance=row[0], epoch=row[1], acquired_at=row[2],
                                                       expires_in_s=round(row[3], 3))
        await cur.execute("SELECT instance, role, epoch, started_at, extract(epoch FROM now() - seen_at)::float8"
                          " FROM ingest_instance WHERE seen_at > now() - make_interval(secs => %s)"
                          " ORDER BY instance", (SHOWN_FOR_S,))
        instances = [InstanceStatus(instance=i, role=r, epoch=e, started_at=s, seen_s_ago=round(max(0.0, a), 3))
                     for i, r, e, s, a in await cur.fetchall()]
    return IngestStatus(leader=leader, instances=instances)
