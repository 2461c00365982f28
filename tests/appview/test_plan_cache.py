"""The API's pools plan prepared statements generically (DB_PLAN_CACHE_MODE): under Postgres' `auto` the
one-row custom plan of the track hydration statement always looks cheaper than its generic plan, so it was
replanned on every request (~10 ms of planning for ~1 ms of running)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from appview.pools import make_pool
from appview.settings import AppviewSettings


async def _mode(db_url: str, **settings: object) -> str:
    pool = make_pool(db_url, AppviewSettings(database_url=db_url, **settings), "test")  # type: ignore[arg-type]
    await pool.open()
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SHOW plan_cache_mode")).fetchone()
            assert row is not None
            return str(row[0])
    finally:
        await pool.close()


async def test_generic_plans_by_default_and_as_configured(db_url: str) -> None:
    assert await _mode(db_url) == "force_generic_plan"
    assert await _mode(db_url, db_plan_cache_mode="auto") == "auto"
    # Nothing is prepared without prepared statements (a transaction-mode pooler): the session is left alone.
    assert await _mode(db_url, db_prepared_statements=False) == "auto"


@pytest.mark.parametrize("bad", ["generic", "", "force_generic_plan; DROP TABLE track", 1])
def test_a_bad_mode_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        AppviewSettings(db_plan_cache_mode=bad)  # type: ignore[arg-type]
