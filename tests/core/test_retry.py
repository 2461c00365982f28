import asyncio

from hypothesis import given
from hypothesis import strategies as st

from core.retry import Backoff, pause


@given(st.floats(0.01, 10), st.floats(0.01, 100), st.integers(1, 200))
def test_delays_stay_within_cap_and_grow(base: float, cap: float, n: int) -> None:
    b = Backoff(base_s=base, cap_s=cap, jitter=False)
    delays = [b.next_delay() for _ in range(n)]
    assert all(0 < d <= cap for d in delays)
    assert delays == sorted(delays)


def test_jitter_and_reset_and_retry_after() -> None:
    b = Backoff(base_s=1, cap_s=8)
    assert 0.5 <= b.next_delay() <= 1
    b.next_delay()
    b.reset()
    assert b.attempt == 0
    assert b.next_delay(retry_after=7) == 7
    assert b.next_delay(retry_after=10**9) == 300


async def test_pause_returns_early_on_stop() -> None:
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(pause(stop, 60), 1)
    await asyncio.wait_for(Backoff(base_s=60).wait(stop), 1)
