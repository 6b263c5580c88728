"""The per-IP burst counter: more than N touches from one IP inside the sliding window."""

from __future__ import annotations

import pytest

from app.burst import BurstCounter

T0 = 1_800_000_000.0


def test_the_hit_past_the_limit_is_the_first_burst() -> None:
    counter = BurstCounter(limit=3)
    assert [counter.hit("203.0.113.7", T0 + i) for i in range(5)] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_ips_are_counted_apart() -> None:
    counter = BurstCounter(limit=1)
    assert counter.hit("203.0.113.7", T0) is False
    assert counter.hit("203.0.113.8", T0) is False
    assert counter.hit("203.0.113.7", T0 + 1) is True
    assert counter.hit("2001:db8::1", T0 + 1) is False


def test_limit_zero_marks_every_hit() -> None:
    counter = BurstCounter(limit=0)
    assert counter.hit("203.0.113.7", T0) is True


def test_a_hit_exactly_one_window_old_no_longer_counts() -> None:
    counter = BurstCounter(limit=1, window_seconds=60.0)
    counter.hit("203.0.113.7", T0)
    assert counter.hit("203.0.113.7", T0 + 60.0) is False


def test_a_hit_just_inside_the_window_still_counts() -> None:
    counter = BurstCounter(limit=1, window_seconds=60.0)
    counter.hit("203.0.113.7", T0)
    assert counter.hit("203.0.113.7", T0 + 59.999) is True


def test_the_window_slides() -> None:
    counter = BurstCounter(limit=2, window_seconds=60.0)
    assert counter.hit("203.0.113.7", T0) is False
    assert counter.hit("203.0.113.7", T0 + 30) is False
    assert counter.hit("203.0.113.7", T0 + 50) is True
    # T0 has left the window; T0+30 and T0+50 are still in, so a third hit is again too many.
    assert counter.hit("203.0.113.7", T0 + 61) is True
    # Only T0+61 is still inside, so this is the second hit of the window: no burst.
    assert counter.hit("203.0.113.7", T0 + 111) is False


def test_a_long_flood_stays_a_burst_and_ends_one_window_after_it_stops() -> None:
    counter = BurstCounter(limit=5, window_seconds=60.0)
    flags = [counter.hit("203.0.113.7", T0 + i * 0.1) for i in range(10_000)]
    assert flags[:5] == [False] * 5
    assert all(flags[5:])
    last = T0 + 9_999 * 0.1
    assert counter.hit("203.0.113.7", last + 60.0) is False


def test_tracked_ips_never_exceed_the_cap() -> None:
    counter = BurstCounter(limit=1, max_ips=100)
    for i in range(1_000):
        counter.hit(f"10.0.{i // 256}.{i % 256}", T0)
    assert len(counter) == 100


def test_the_least_recently_hit_ip_is_evicted_first() -> None:
    counter = BurstCounter(limit=1, max_ips=2)
    counter.hit("192.0.2.1", T0)
    counter.hit("192.0.2.2", T0 + 1)
    counter.hit("192.0.2.1", T0 + 2)  # .1 is now the most recent; .2 the oldest
    counter.hit("192.0.2.3", T0 + 3)  # evicts .2
    assert counter.hit("192.0.2.2", T0 + 4) is False  # forgotten, counting afresh
    assert counter.hit("192.0.2.3", T0 + 5) is True  # remembered


@pytest.mark.parametrize(
    ("limit", "window_seconds", "max_ips"),
    [(-1, 60.0, 10), (1, 0.0, 10), (1, 60.0, 0)],
)
def test_nonsense_settings_are_refused(limit: int, window_seconds: float, max_ips: int) -> None:
    with pytest.raises(ValueError):
        BurstCounter(limit, window_seconds, max_ips)
