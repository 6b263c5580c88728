"""The per-IP burst counter behind the `burst_ip` reason (attribution.md section 1).

"More than N touches from one IP in a minute": `BurstCounter.hit` records one touch and says
whether its IP is now over the limit inside the sliding window. A hit counts while it is less
than `window_seconds` old; one exactly `window_seconds` old has left the window.

Memory is bounded two ways. Per IP, only the latest `limit + 1` hit times are kept: whether more
than `limit` hits fall inside the window depends on those alone. Across IPs, at most `max_ips`
are tracked; a new IP beyond that evicts the one whose latest hit is the oldest, so a flood of
spoofed or rotating addresses costs a bounded amount and at worst makes the counter forget
quiet IPs (which then simply start counting afresh).

The counter lives in memory, per process, and is not thread-safe: the service runs one event
loop, and every call happens on it. Several worker processes each count their own share.
"""

from __future__ import annotations

from collections import OrderedDict, deque

DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_MAX_IPS = 100_000


class BurstCounter:
    def __init__(
        self,
        limit: int,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_ips: int = DEFAULT_MAX_IPS,
    ) -> None:
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        if max_ips < 1:
            raise ValueError(f"max_ips must be at least 1, got {max_ips}")
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_ips = max_ips
        # Least recently hit IP first, so eviction is popping the front.
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, ip: str, now: float) -> bool:
        """Record a touch from `ip` at `now` (Unix seconds); True when the IP is over the limit."""
        times = self._hits.get(ip)
        if times is None:
            times = deque(maxlen=self.limit + 1)
            self._hits[ip] = times
            if len(self._hits) > self.max_ips:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(ip)
        times.append(now)
        horizon = now - self.window_seconds
        while times and times[0] <= horizon:
            times.popleft()
        return len(times) > self.limit

    def __len__(self) -> int:
        """How many IPs are being tracked (never more than `max_ips`)."""
        return len(self._hits)
