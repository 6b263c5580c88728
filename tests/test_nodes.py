"""Two Gangway nodes on one PostgreSQL database, through HTTP only (docs/scale.md section 2).

Two real server processes (`python -m app serve`, as an owner runs them behind a load balancer)
share a fresh database on the session's throwaway server and post to the fake TikTok. First the
whole journey on one of them (page, impression, click, install, events, postbacks), then
traffic spread over both:
- one click, installs claiming it on both nodes at once: one winner, the others re-decided;
- the same `event_id` sent to both nodes at once: one row, one answer, one postback sent;
- 1,000 postbacks queued across both nodes: each delivered once (counted by `event_id`);
- a node SIGKILLed while it holds a postback (its request to TikTok hanging): another node
  sends what queues meanwhile at once, and that postback once its lease has expired.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests import dbq
from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import postback_journey, seed
from tests.live import LiveServer
from tests.pg import PgDatabases

ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
AD_QUERY = "pid=tiktokweb_int&c=summer&af_c_id=1700&ttclid=E.C.P.nodes&af_sub1=E.C.P.nodes"
# A short lease, so the SIGKILL test waits seconds, not a minute; the worker keeps it above
# the TikTok timeout plus 5 s (app/jobs/outbox.py). The timeout is long enough for the test to
# kill a node while its request is still hanging at the fake (it has not given up on it).
TIKTOK_TIMEOUT_SECONDS = 3
LEASE_SECONDS = TIKTOK_TIMEOUT_SECONDS + 5
NODE_ENV = {
    "GANGWAY_OUTBOX_LEASE_SECONDS": "3",
    "GANGWAY_TIKTOK_TIMEOUT_SECONDS": str(TIKTOK_TIMEOUT_SECONDS),
}


class Cluster:
    def __init__(self, db: str, folder: Path, fake: FakeTikTok) -> None:
        self.db = db
        self.folder = folder
        self.fake = fake
        self.token, self.sdk_key = seed(db)
        self.nodes: list[LiveServer] = []
        self.started = 0

    def start_nodes(self, n: int = 1) -> list[LiveServer]:
        """Start `n` more nodes, together (each start waits for the node's /healthz)."""
        env = NODE_ENV | {"GANGWAY_TIKTOK_API_URL": self.fake.base_url}
        new = []
        for _ in range(n):
            self.started += 1
            new.append(LiveServer(self.db, env, log_path=self.folder / f"node-{self.started}.log"))
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(LiveServer.start, new))
        self.nodes += new
        return new

    @property
    def sdk(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sdk_key}"}

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n.log_path.name}\n{n.logs()[-6000:]}" for n in self.nodes)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pg_pool: PgDatabases, fake_tiktok_server: FakeTikTok
) -> Iterator[Cluster]:
    db = pg_pool.take()
    cluster = Cluster(db, tmp_path_factory.mktemp("nodes"), fake_tiktok_server)
    try:
        cluster.start_nodes(2)
        yield cluster
    finally:
        cluster.stop()
        pg_pool.give_back(db)


@pytest.fixture()
def nodes(cluster: Cluster, fake_tiktok: FakeTikTok) -> Cluster:
    """The cluster, with the fake TikTok reset (a failing test shows both nodes' logs)."""
    return cluster


def click(node: LiveServer, ip: str) -> str:
    """A Google Play CTA tap on `node`; answers the Play install referrer."""
    answer = httpx.get(
        f"{node.url}/c/demo?{AD_QUERY}",
        headers={"User-Agent": ANDROID_UA, "X-Forwarded-For": ip},
        follow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["referrer"][0]


def install(node: LiveServer, sdk: dict[str, str], instance: str, **body: Any) -> dict[str, Any]:
    """The app's install, two minutes after the click (a click seconds before an install is
    rejected as click injection, and the servers' clock is the real one)."""
    fields = {"app_key": "demo", "platform": "android", "app_instance_id": instance}
    answer = httpx.post(
        f"{node.url}/api/v1/installs",
        json=fields | {"install_time": int(time.time()) + 120} | body,
        headers=sdk,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def event(
    client: httpx.Client, node: LiveServer, sdk: dict[str, str], instance: str, event_id: str
) -> dict[str, Any]:
    answer = client.post(
        f"{node.url}/api/v1/events",
        json={
            "app_key": "demo",
            "app_instance_id": instance,
            "event_name": "af_purchase",
            "event_id": event_id,
        },
        headers=sdk,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def at_once(*calls: Any) -> list[Any]:
    """Run the calls concurrently, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(fn: Any) -> Any:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def attributed_instance(cluster: Cluster, name: str) -> str:
    a, _ = cluster.nodes[-2:]
    referrer = click(a, "198.51.100.50")
    answer = install(a, cluster.sdk, name, install_referrer=referrer)
    assert answer["status"] == "attributed", answer
    return name


def stored_ids(cluster: Cluster, prefix: str) -> dict[str, str]:
    """Stored event id (what TikTok receives as event_id) -> the SDK's event_id."""
    rows = dbq.query(
        cluster.db, "SELECT id, event_id FROM events WHERE event_id LIKE ?", (prefix + "%",)
    )
    return {str(stored): str(sent) for stored, sent in rows}


def delivered(fake: FakeTikTok, ids: set[str]) -> Counter[str]:
    return Counter(e["event_id"] for e in fake.events() if e["event_id"] in ids)


def all_sent_once(cluster: Cluster, prefix: str) -> bool:
    """Every postback of the events named `prefix...` is recorded sent, after one attempt each.
    Once all are `sent` no node can claim one again, so no later send can come."""
    rows = dbq.query(
        cluster.db,
        "SELECT p.state, (SELECT COUNT(*) FROM postback_attempts a WHERE a.postback_id = p.id) "
        "FROM postbacks p JOIN events e ON e.id = p.subject_id WHERE e.event_id LIKE ?",
        (prefix + "%",),
    )
    if any(state != "sent" for state, _ in rows):
        return False
    assert {attempts for _, attempts in rows} == {1}, rows
    return True


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def test_the_whole_journey_runs_on_a_postgresql_node(nodes: Cluster) -> None:
    """Page, impression, click, install, events and their postbacks, checked whole by the same
    checks as on SQLite (`test_postbacks_e2e.py`), served by a node on PostgreSQL."""
    a, _ = nodes.nodes
    a.sdk_key = nodes.sdk_key  # type: ignore[attr-defined]
    a.admin_token = nodes.token  # type: ignore[attr-defined]
    landing = f"{a.url}/lp/demo?pid=tiktokweb_int&c=summer&ttclid=E.C.P.journey"
    page = httpx.get(landing, headers={"User-Agent": ANDROID_UA})
    assert page.status_code == 200 and "data-platform" in page.text
    beacon = httpx.post(
        f"{a.url}/i/demo",
        json={"url": landing, "pvid": "pv-journey"},
        headers={"User-Agent": ANDROID_UA},
    )
    assert beacon.status_code == 202, beacon.text
    assert dbq.query(nodes.db, "SELECT pvid FROM impressions WHERE pvid = ?", ("pv-journey",))
    postback_journey(a, nodes.fake)


def test_installs_on_both_nodes_claiming_one_click_leave_it_to_one(nodes: Cluster) -> None:
    a, b = nodes.nodes
    for round_ in range(5):
        referrer = click(a if round_ % 2 else b, f"198.51.100.{round_ + 1}")
        click_id = parse_qs(referrer)["gw_click_id"][0]
        answers = at_once(
            *(
                (
                    lambda n=n, name=f"race-{round_}-{i}", r=referrer: install(
                        n, nodes.sdk, name, install_referrer=r
                    )
                )
                for i, n in enumerate([a, b, a, b])
            )
        )
        winners = [x for x in answers if (x.get("touch") or {}).get("id") == click_id]
        assert len(winners) == 1, answers
        # The losers were re-decided at once, each its own install.
        assert len({x["install_id"] for x in answers}) == 4
        claimed = dbq.query(nodes.db, "SELECT claimed_by FROM clicks WHERE id = ?", (click_id,))
        assert claimed == [(f"race-{round_}-{answers.index(winners[0])}",)]


def test_one_event_id_sent_to_both_nodes_is_one_row_and_one_postback(nodes: Cluster) -> None:
    a, b = nodes.nodes
    instance = attributed_instance(nodes, "buyer-once")
    with httpx.Client() as client:
        answers = at_once(
            *((lambda n=n: event(client, n, nodes.sdk, instance, "ev-twice")) for n in (a, b, a, b))
        )
    assert all(x == answers[0] for x in answers), answers
    ids = stored_ids(nodes, "ev-twice")
    assert len(ids) == 1
    wait_for(lambda: all_sent_once(nodes, "ev-twice"), 10, "the postback of ev-twice sent")
    assert delivered(nodes.fake, set(ids)) == Counter({next(iter(ids)): 1})
    rows = dbq.query(nodes.db, "SELECT COUNT(*) FROM postbacks WHERE subject_id = ?", tuple(ids))
    assert rows == [(1,)]


def test_postbacks_queued_across_both_nodes_are_each_delivered_once(
    nodes: Cluster,
) -> None:
    a, b = nodes.nodes
    instance = attributed_instance(nodes, "buyer-many")
    # Enough for both workers to claim batches side by side, few enough for the suite's time.
    numbers = list(range(120))

    def send(chunk: list[int]) -> None:
        with httpx.Client() as client:
            for i in chunk:
                event(client, (a, b)[i % 2], nodes.sdk, instance, f"bulk-{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [numbers[i::8] for i in range(8)]))
    ids = set(stored_ids(nodes, "bulk-"))
    assert len(ids) == 120
    wait_for(lambda: all_sent_once(nodes, "bulk-"), 60, "120 postbacks sent")
    counts = delivered(nodes.fake, ids)
    assert len(counts) == 120
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:10]
    assert not nodes.fake.violations


def test_a_node_killed_holding_leases_leaves_them_to_the_other(nodes: Cluster) -> None:
    a, b = nodes.nodes
    instance = attributed_instance(nodes, "buyer-killed")
    # Only node A runs: it claims the first postback, and its request to TikTok hangs.
    b.stop()
    nodes.fake.script(hang_seconds=60, times=1)
    with httpx.Client() as client:
        event(client, a, nodes.sdk, instance, "killed-0")
        wait_for(lambda: not nodes.fake._state.script, 10, "node A's request reaching TikTok")
        a.kill()
        held = dbq.query(
            nodes.db,
            "SELECT COUNT(*) FROM postbacks WHERE lease_until IS NOT NULL AND state = 'pending'",
        )
        assert held == [(1,)], "node A died holding the lease of its postback"
        # The other node: it sends what queues now at once, and A's postback once its lease
        # has expired.
        (c,) = nodes.start_nodes(1)
        for i in range(1, 40):
            event(client, c, nodes.sdk, instance, f"killed-{i}")
    ids = stored_ids(nodes, "killed-")
    assert len(ids) == 40
    first = next(stored for stored, sent in ids.items() if sent == "killed-0")
    wait_for(lambda: len(delivered(nodes.fake, set(ids))) == 40, 40, "every postback delivered")

    def states() -> list[tuple[Any, ...]]:
        return dbq.query(
            nodes.db,
            "SELECT state, COUNT(*) FROM postbacks WHERE subject_id IN "
            "(SELECT id FROM events WHERE event_id LIKE 'killed-%') GROUP BY state",
        )

    # The node records an attempt once TikTok has answered it: a moment after the fake counts it.
    wait_for(lambda: states() == [("sent", 40)], 10, "every postback recorded as sent")
    # Claimed (so leased) after it was queued, sent only once that lease had run out.
    [(waited,)] = dbq.query(
        nodes.db, "SELECT sent_at - created_at FROM postbacks WHERE subject_id = ?", (first,)
    )
    assert waited >= LEASE_SECONDS, waited
    assert delivered(nodes.fake, {first}) == Counter({first: 1})
