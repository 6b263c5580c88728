"""The PostgreSQL backend's own promises (what every backend promises is
`test_store_contract.py`): named migrations and the refusal of a newer schema, day partitions
made ahead and pruned by the candidate lookups, postback leases, job leases, and races between
two stores on one database (two nodes) settled by constraints, rollups exact under both."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from app.postbacks.postback import NewPostback, PostbackAttempt
from app.reports.rollups import Increment, RollupKey
from app.store.postgres import PostgresStore
from app.store.postgres.candidates import CLICKS_SQL
from app.store.postgres.partitions import DAY, day_of, partition_name
from app.store.postgres.schema import MIGRATIONS, SchemaTooNew
from app.store.records import ClickAlreadyClaimed
from app.touches import Touch, TouchRecord
from tests.aio import run_async
from tests.records import make_event, make_install

T0 = 1_790_000_000.0


def postback(subject: str) -> NewPostback:
    return NewPostback("demo", "tiktokweb_int", "install", subject, "Download", {"s": subject})


def test_migrations_are_named_like_sqlites_and_a_newer_schema_is_refused(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM gangway_migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert names[:3] == ["0001_initial", "0002_outbox_delivery", "0003_install_reinstall_of"]
    run_async(_open_and_close(pg_database))  # applied once: opening again changes nothing
    with psycopg.connect(pg_database) as conn:
        conn.execute("INSERT INTO gangway_migrations VALUES ('9999_from_the_future', 0)")
    with pytest.raises(SchemaTooNew, match="9999_from_the_future"):
        run_async(_open_and_close(pg_database))
    with psycopg.connect(pg_database) as conn:
        conn.execute("DELETE FROM gangway_migrations WHERE name = '9999_from_the_future'")


async def _open_and_close(url: str) -> None:
    store = await PostgresStore.open(url)
    await store.close()


def test_commits_are_synchronous(pg_database: str) -> None:
    async def scenario() -> str:
        store = await PostgresStore.open(pg_database)
        try:
            async with store.database.pool.connection() as conn:
                cursor = await conn.execute("SHOW synchronous_commit")
                row = await cursor.fetchone()
                assert row is not None
                return str(row["synchronous_commit"])
        finally:
            await store.close()

    assert run_async(scenario()) == "on"


def test_touches_go_to_day_partitions_made_ahead_and_lookups_prune_them(pg_database: str) -> None:
    async def scenario() -> None:
        store = await PostgresStore.open(pg_database, now=T0)
        try:
            old = Touch(id="c-old", kind="click", app_key="demo", time=T0 - 40 * DAY, ip="1.2.3.4")
            await store.touches.record_touch(TouchRecord(old))  # its day is made on the spot
            assert await store.candidates.attributed_touch("click", "c-old") == old
        finally:
            await store.close()

    run_async(scenario())
    with psycopg.connect(pg_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'r'")}
        for days in range(-1, 8):
            assert partition_name("clicks", day_of(T0) + days * DAY) in tables
        assert partition_name("impressions", day_of(T0 - 40 * DAY)) in tables
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN "
                + CLICKS_SQL.replace("%s", "{}").format("'demo'", "'1.2.3.4'", T0 - 3600, T0, 51)  # type: ignore[arg-type]
            )
        )
    # An hour's range reads one day's partition (two at most across midnight), not all.
    assert plan.count("clicks_p") <= 2, plan


def test_a_claimed_postback_is_leased_until_recorded_or_expired(pg_database: str) -> None:
    async def scenario() -> None:
        node_a = await PostgresStore.open(pg_database)
        node_b = await PostgresStore.open(pg_database)
        try:
            await node_a.outbox.queue_postbacks([postback(f"p{i}") for i in range(4)], T0)
            taken = await node_a.outbox.claim_postbacks(
                T0, per_integration=2, limit=10, lease_seconds=30
            )
            assert [p.subject_id for p in taken] == ["p0", "p1"]
            rest = await node_b.outbox.claim_postbacks(
                T0 + 1, per_integration=10, limit=10, lease_seconds=30
            )
            assert [p.subject_id for p in rest] == ["p2", "p3"]
            assert (
                await node_b.outbox.claim_postbacks(
                    T0 + 29, per_integration=10, limit=10, lease_seconds=30
                )
                == []
            )
            await node_a.outbox.record_attempts(
                [PostbackAttempt(taken[0].id, T0 + 2, "sent", T0 + 2, 200, 0, "OK")]
            )
            # node A died holding p1: after its lease, node B takes it; p0 was sent.
            late = await node_b.outbox.claim_postbacks(
                T0 + 30, per_integration=10, limit=10, lease_seconds=30
            )
            assert [p.subject_id for p in late] == ["p1"]
            assert await node_b.outbox.next_postback_due() == T0 + 31
        finally:
            await node_a.close()
            await node_b.close()

    run_async(scenario())


def test_concurrent_claims_from_two_nodes_never_share_a_postback(pg_database: str) -> None:
    async def scenario() -> None:
        nodes = [await PostgresStore.open(pg_database, max_size=4) for _ in range(2)]
        try:
            await nodes[0].outbox.queue_postbacks([postback(f"p{i}") for i in range(300)], T0)
            taken: list[str] = []

            async def drain(store: PostgresStore) -> None:
                while rows := await store.outbox.claim_postbacks(
                    T0, per_integration=7, limit=7, lease_seconds=60
                ):
                    taken.extend(p.id for p in rows)

            await asyncio.gather(*(drain(n) for n in nodes for _ in range(3)))
            assert len(taken) == len(set(taken)) == 300
        finally:
            for node in nodes:
                await node.close()

    run_async(scenario())


def test_a_job_lease_is_held_by_one_node_until_it_expires(pg_database: str) -> None:
    async def scenario() -> None:
        store = await PostgresStore.open(pg_database)
        try:
            leases = store.leases
            assert await leases.acquire("retention", "node-a", T0, 60)
            assert not await leases.acquire("retention", "node-b", T0 + 1, 60)
            assert not await leases.acquire("retention", "node-a", T0 + 59, 60)
            assert await leases.acquire("cost-pull", "node-b", T0 + 1, 60)
            assert await leases.acquire("retention", "node-b", T0 + 60, 60)
        finally:
            await store.close()

    run_async(scenario())


def test_two_nodes_racing_for_one_click_one_instance_and_one_event_each_write_once(
    pg_database: str,
) -> None:
    async def scenario() -> None:
        nodes = [await PostgresStore.open(pg_database, max_size=6) for _ in range(2)]
        try:
            click = Touch(id="c1", kind="click", app_key="demo", time=T0, ip="1.2.3.4")
            await nodes[0].touches.record_touch(TouchRecord(click))
            racers = [make_install(f"a{i}", status="attributed") for i in range(6)]
            results = await asyncio.gather(
                *(
                    nodes[i % 2].installs.record_install(
                        install, claim_click="c1", postbacks=[postback(install.id)], now=T0
                    )
                    for i, install in enumerate(racers)
                ),
                return_exceptions=True,
            )
            assert sum(isinstance(r, tuple) for r in results) == 1
            assert sum(isinstance(r, ClickAlreadyClaimed) for r in results) == 5

            same = make_install("same")
            twins = await asyncio.gather(
                *(
                    nodes[i % 2].installs.record_install(
                        same, claim_click=None, postbacks=[postback(f"s{i}")], now=T0
                    )
                    for i in range(6)
                )
            )
            assert sorted(created for _, created in twins) == [False] * 5 + [True]
            event = make_event(same, "ev-1")
            answers = await asyncio.gather(
                *(
                    nodes[i % 2].events.record_event(event, postbacks=[postback(f"e{i}")], now=T0)
                    for i in range(6)
                )
            )
            assert sorted(created for _, created in answers) == [False] * 5 + [True]
            assert all(e == event for e, _ in answers)
        finally:
            for node in nodes:
                await node.close()

    run_async(scenario())
    with psycopg.connect(pg_database) as conn:
        counts = conn.execute(
            "SELECT (SELECT COUNT(*) FROM installs), (SELECT COUNT(*) FROM events), "
            "(SELECT COUNT(*) FROM postbacks), (SELECT COUNT(*) FROM click_claims)"
        ).fetchone()
    assert counts == (2, 1, 3, 1)


def test_one_page_view_sent_to_two_nodes_at_once_is_one_impression(pg_database: str) -> None:
    async def scenario() -> list[str]:
        nodes = [await PostgresStore.open(pg_database, max_size=4) for _ in range(2)]
        try:
            views = [
                Touch(id=f"i{n}", kind="impression", app_key="demo", time=T0, pvid="pv-1")
                for n in range(6)
            ]
            return list(
                await asyncio.gather(
                    *(
                        nodes[n % 2].touches.record_touch(TouchRecord(v))
                        for n, v in enumerate(views)
                    )
                )
            )
        finally:
            for node in nodes:
                await node.close()

    answers = run_async(scenario())
    assert len(set(answers)) == 1
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM impressions").fetchone() == (1,)


def test_rollups_stay_exact_under_writers_on_two_nodes(pg_database: str) -> None:
    """Touches written at once through two stores each add to the same two rollups (and, in
    the other order, to a second pair): every increment counts, and no writer deadlocks."""
    keys = [RollupKey("demo", 497_222, "tiktokweb_int", *[""] * 7, "", m) for m in "ab"]

    async def scenario() -> dict[RollupKey, int]:
        nodes = [await PostgresStore.open(pg_database, max_size=6) for _ in range(2)]
        try:
            touches = [
                Touch(id=f"c{n}", kind="click", app_key="demo", time=T0 + n) for n in range(40)
            ]
            await asyncio.gather(
                *(
                    nodes[n % 2].touches.record_touch(
                        TouchRecord(t),
                        rollups=[Increment(k, 1) for k in (keys if n % 2 else keys[::-1])],
                    )
                    for n, t in enumerate(touches)
                )
            )
            return await nodes[0].reports.rollup_values("demo")
        finally:
            for node in nodes:
                await node.close()

    assert run_async(scenario()) == {keys[0]: 40, keys[1]: 40}
    with psycopg.connect(pg_database) as conn:
        by_source = conn.execute("SELECT metric, value FROM rollups_by_source ORDER BY metric")
        assert by_source.fetchall() == [("a", 40), ("b", 40)]


def test_the_settings_listing_hides_a_database_password() -> None:
    from app.settings import Settings, describe

    shown = dict((name, value) for name, value, _ in describe(Settings(db="postgresql://u:pw@h/g")))
    assert shown["GANGWAY_DB"] == "postgresql://u:***@h/g"


def test_every_command_with_a_database_takes_a_url(
    pg_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """migrate, token create, demo, user create, secrets rotate, rollups rebuild and retention
    run on a postgresql:// URL; the password in the URL never shows, and without a shared
    secret key nothing is sealed on a database URL."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    from app.__main__ import main

    def command(*argv: str) -> int:
        # A thread of its own: the command runs its own event loop (asyncio.run), and a browser
        # test may have left one running in this thread.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(main, list(argv)).result()

    def rows(sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(pg_database) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    password_url = pg_database.replace("postgres@", "postgres:hunter2@")
    assert command("migrate", "--db", password_url) == 0
    out = capsys.readouterr().out
    assert "schema up to date" in out and "hunter2" not in out

    monkeypatch.delenv("GANGWAY_SECRET_KEY", raising=False)
    assert command("token", "create", "--db", pg_database, "--label", "ops") == 0
    assert rows("SELECT label FROM tokens") == [("ops",)]
    # The demo seals its access token: on a database URL, only under the nodes' shared key.
    assert command("demo", "--db", pg_database) == 2
    assert "GANGWAY_SECRET_KEY: required with a database URL" in capsys.readouterr().err
    monkeypatch.setenv("GANGWAY_SECRET_KEY", "key-one")
    assert command("demo", "--db", pg_database) == 0
    [(sealed,)] = rows("SELECT access_token FROM integrations")
    assert "demo-access-token" not in str(sealed)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    args = ("--email", "ops@example.com", "--role", "viewer", "--apps", "demo")
    assert command("user", "create", *args, "--password-stdin", "--db", pg_database) == 0
    assert rows("SELECT username, role, apps FROM users") == [
        ("ops@example.com", "viewer", '["demo"]')
    ]
    monkeypatch.setenv("GANGWAY_SECRET_KEY", "key-two")
    assert command("secrets", "rotate", "--old-key", "key-one", "--db", pg_database) == 0
    assert "1 access token(s) sealed" in capsys.readouterr().out
    assert rows("SELECT access_token FROM integrations") != [(sealed,)]
    assert command("rollups", "rebuild", "--db", pg_database) == 0
    assert command("retention", "run", "--db", pg_database) == 0
    out = capsys.readouterr().out
    assert "rollups rebuilt for every app: 0 rows" in out and "retention as of" in out


def test_two_nodes_share_one_audience_sync_one_oauth_state_and_one_pull_replace(
    pg_database: str,
) -> None:
    """Asked at once through two stores: one sync of an audience holds it, an OAuth state is
    used once, and two replaces of one pull's scope leave exactly one pull's rows."""
    from datetime import date

    from app.audiences import validate_rule
    from app.reports.cost import TIKTOK_API, CostEntry, CostScope

    rule = validate_rule({"advertiser_id": "7002", "platform": "ios", "media_source": "any"})
    day = date(2026, 11, 21)
    scope = CostScope("demo", TIKTOK_API, "adv-1", day, day)

    def pulled(ads: str) -> list[CostEntry]:
        return [
            CostEntry("demo", day, TIKTOK_API, "tiktokglobal_int", "c", "1700", "", "", "", a,
                      "", "1", "USD", 1_000_000, "USD")
            for a in ads
        ]  # fmt: skip

    async def scenario() -> tuple[list[int | None], list[bool], set[str]]:
        nodes = [await PostgresStore.open(pg_database, max_size=6) for _ in range(2)]
        try:
            await nodes[0].configs.put_app("demo", {"name": "Demo"}, T0)
            audience = await nodes[0].audiences.put_audience("demo", "a", rule, T0, reset=False)
            runs = await asyncio.gather(
                *(nodes[n % 2].audiences.start_sync(audience.id, T0, 60) for n in range(6))
            )
            used = await asyncio.gather(
                *(nodes[n % 2].tiktok_ads.use_oauth_state("nonce-1", T0, 600) for n in range(6))
            )
            await asyncio.gather(
                *(
                    nodes[n % 2].cost.replace_cost(scope, pulled(ads), T0)
                    for n, ads in enumerate(["abc", "cd", "ab", "d", "bcd", "a"])
                )
            )
            rows = await nodes[1].cost.cost_between("demo", day, day)
            return list(runs), list(used), {r.ad_id for r in rows}
        finally:
            for node in nodes:
                await node.close()

    runs, used, ads = run_async(scenario())
    assert sorted(runs, key=str) == [1, None, None, None, None, None]
    assert sorted(used) == [False] * 5 + [True]
    assert ads in ({"a", "b", "c"}, {"c", "d"}, {"a", "b"}, {"d"}, {"b", "c", "d"}, {"a"})
