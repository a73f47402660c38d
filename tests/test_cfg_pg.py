"""pg_query's session settings and counter rates, pg_health's lock holders, idle
transactions and usable connections, all against the machine's real PostgreSQL (each test
in its own fresh database from the ``pg_url`` fixture)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest

from conftest import wait_until
from cockpit.clock import ManualClock, SystemClock
from cockpit.config import ConfigError, config_from_dict
from cockpit.signals.sources import SourceContext, SourceError, build_source

COST_TODAY = "SELECT SUM(token_usage * 0.00002) FROM ai_action_logs WHERE created_at >= CURRENT_DATE"
TPS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
LA = "America/Los_Angeles"


def raw_config(url: str, **source) -> dict:
    """A whole config around one source named "db"; the fixed panels read a second one."""
    kind = source.setdefault("kind", "pg_query")
    raw = {
        "service": {"name": "cfg-pg", "environment": "test"},
        "sources": [{"name": "db", "database": url, "interval": 1.0, "timeout": 3.0, **source},
                    {"name": "m", "kind": "pg_query", "database": url,
                     "queries": {"e": "SELECT 0", "l": "SELECT 0", "c": "SELECT 0"}}],
        "panels": {"error_rate": {"series": "m:e", "unit": "ratio"},
                   "latency": {"series": "m:l", "unit": "seconds"},
                   "cost": {"series": "m:c", "unit": "usd_per_day"}},
    }
    if kind == "pg_health":
        raw["panels"]["components"] = {"sources": ["db"]}
    return raw


def make(url: str, clock=None, **source):
    config = config_from_dict(raw_config(url, **source), "<t>", {})
    return build_source(config.source("db"), SourceContext(clock or SystemClock()))


async def poll(src) -> dict:
    return {r.series: r for r in await src.poll()}


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, "<t>", {})
    return err.value.problems


# ---------------------------------------------------------------- 1. session settings


@pytest.fixture
def la_logs(pg_url):
    """Seed 000's table with $2 of calls every hour for the last two days, in a database
    whose default TimeZone is America/Los_Angeles (ALTER DATABASE ... SET timezone)."""
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE ai_action_logs (id serial, token_usage int, created_at timestamptz)")
        db.execute("INSERT INTO ai_action_logs (token_usage, created_at) "
                   "SELECT 100000, now() - interval '1 hour' * k - interval '1 minute' FROM generate_series(0, 47) k")
        db.execute(f'ALTER DATABASE "{dbname}" SET timezone = \'{LA}\'')
        rows = db.execute("SELECT created_at, token_usage FROM ai_action_logs").fetchall()
    return pg_url, rows


def cost_since_midnight(rows, zone: str) -> float:
    """The cost the seed's CURRENT_DATE query means in ``zone``, from the same clock."""
    midnight = datetime.now(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
    return sum(tokens for at, tokens in rows if at >= midnight) * 0.00002


async def cost_in(src, rows, zone: str) -> tuple[float, list]:
    """The source's cost_today, and what it may be (computed before and after: a midnight
    passing during the poll is not a failure)."""
    before = cost_since_midnight(rows, zone)
    try:
        value = (await poll(src))["cost_today"].value
    finally:
        await src.aclose()
    return value, [pytest.approx(before), pytest.approx(cost_since_midnight(rows, zone))]


async def test_cost_today_is_the_utc_day_by_default_and_settings_can_name_another_zone(la_logs):
    url, rows = la_logs
    with psycopg.connect(url, autocommit=True) as plain:  # the problem: the database's default decides
        assert plain.execute("SHOW TimeZone").fetchone()[0] == LA
        plain_cost = float(plain.execute(COST_TODAY).fetchone()[0])
    utc_expected, la_expected = cost_since_midnight(rows, "UTC"), cost_since_midnight(rows, LA)
    assert utc_expected != pytest.approx(la_expected)  # the data tells the two days apart at any hour
    assert plain_cost in (pytest.approx(la_expected), pytest.approx(cost_since_midnight(rows, LA)))

    utc, allowed = await cost_in(make(url, queries={"cost_today": COST_TODAY}), rows, "UTC")
    assert utc in allowed
    la, allowed = await cost_in(make(url, queries={"cost_today": COST_TODAY}, settings={"TimeZone": LA}), rows, LA)
    assert la in allowed and la != pytest.approx(utc)
    print(f"\ncost today, database default {LA}: pinned UTC ${utc:.2f}, settings TimeZone={LA} ${la:.2f}")


async def test_utc_wins_over_a_zone_given_in_the_url_options_too(la_logs):
    url, rows = la_logs
    url_la = f"{url}?options=-c%20timezone%3DAsia/Tokyo"
    with psycopg.connect(url_la, autocommit=True) as plain:
        assert plain.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
    value, allowed = await cost_in(make(url_la, queries={"cost_today": COST_TODAY}), rows, "UTC")
    assert value in allowed
    # a lower-case name replaces the default (PostgreSQL's names are case-insensitive)
    value, allowed = await cost_in(make(url_la, queries={"cost_today": COST_TODAY}, settings={"timezone": LA}), rows,
                                   LA)
    assert value in allowed


async def test_settings_reach_the_session_as_bound_values(pg_url):
    hostile = "x'; DROP TABLE app.tenants; --"
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE SCHEMA app")
        db.execute("CREATE TABLE app.tenants (id int)")
        db.execute("INSERT INTO app.tenants SELECT generate_series(1, 7)")
    src = make(pg_url, settings={"search_path": "app", "lock_timeout": "1500ms", "cockpit_t.note": hostile},
               queries={"tenants": "SELECT count(*) FROM tenants",  # unqualified: found through search_path
                        "lock_ms": "SELECT extract(epoch FROM current_setting('lock_timeout')::interval) * 1000",
                        "note": "SELECT length(current_setting('cockpit_t.note'))",
                        "utc": "SELECT (current_setting('TimeZone') = 'UTC')::int"})
    try:
        by = await poll(src)
    finally:
        await src.aclose()
    assert by["tenants"].value == 7 and by["lock_ms"].value == 1500 and by["utc"].value == 1
    assert by["note"].value == len(hostile)  # the value arrived whole, as data
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM app.tenants").fetchone()[0] == 7


@pytest.mark.parametrize("settings, message", [
    ({"no_such_setting": "1"}, 'sources.db.settings.no_such_setting: unrecognized configuration parameter '
                               '"no_such_setting"'),
    ({"TimeZone": "Mars/Olympus_Mons"}, 'sources.db.settings.TimeZone: invalid value for parameter "TimeZone": '
                                        '"Mars/Olympus_Mons"'),
])
async def test_a_setting_the_server_refuses_fails_every_poll_with_one_line_naming_it(pg_url, settings, message):
    src = make(pg_url, settings=settings, queries={"one": "SELECT 1"})
    try:
        for _ in range(2):  # the session is not kept: the next poll does not run on it unset
            with pytest.raises(SourceError) as err:
                await src.poll()
            assert str(err.value) == message
            assert src._conn is None
    finally:
        await src.aclose()


def test_settings_and_rates_are_checked_at_load():
    raw = raw_config("postgresql://127.0.0.1:5432/x", queries={"tps": TPS, "cost": "SELECT 1"},
                     rates=["tpz", "cost", "cost"],
                     settings={"bad name": "x", "TimeZone": "UTC", "timezone": "Europe/Paris",
                               "statement_timeout": "5s", "search_path": "app\x00"})
    assert problems(raw) == [
        "<t>: sources[0].settings: 'bad name' is not a setting name (letters, digits, '_', e.g. search_path or "
        "app.tenant)",
        "<t>: sources[0].settings: 'TimeZone' and 'timezone' are the same setting (names are case-insensitive)",
        "<t>: sources[0].settings: statement_timeout: set by the source's own statement_timeout key, not here",
        "<t>: sources[0].settings: search_path: a value cannot hold a NUL character",
        "<t>: sources[0].rates: 'tpz' is not one of the queries (did you mean 'tps'?)",
        "<t>: sources[0].rates: each query may be listed once",
    ]
    raw["sources"][0].update(rates=["tps"], settings={"search_path": 5})
    assert problems(raw) == ["<t>: sources[0].settings.search_path: expected a string, got 5"]
    # today's shape still loads, and TimeZone UTC comes with it
    raw["sources"][0].pop("rates")
    raw["sources"][0].pop("settings")
    cfg = config_from_dict(raw, "<t>", {}).source("db")
    assert cfg.rates == [] and cfg.session_settings() == {"TimeZone": "UTC"}
    assert cfg.model_copy(update={"settings": {"search_path": "app"}}).session_settings() == {
        "TimeZone": "UTC", "search_path": "app"}


def test_cockpit_check_says_a_bad_setting_and_a_warming_rate_in_one_line_each(pg_url, write_config):
    raw = raw_config(pg_url, queries={"one": "SELECT 1"}, settings={"search_pth": "app"})
    raw["sources"].append({"name": "load", "kind": "pg_query", "database": pg_url, "queries": {"tps": TPS},
                           "rates": ["tps"]})
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "check", "-c", str(write_config(raw))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert rows["db"].split()[2] == "FAILED"
    assert rows["db"].endswith('sources.db.settings.search_pth: unrecognized configuration parameter "search_pth"')
    assert rows["load"].split()[2] == "ok" and rows["load"].endswith("tps: warming up (a rate)")


# ---------------------------------------------------------------- 2. rates from counters


async def test_a_counter_reads_as_its_per_second_rate(pg_url):
    """A counter the test sets itself, read on a manual clock: exact rates, the first poll
    warming up, a window under min_rate_window giving nothing (the older baseline kept), a
    counter going down giving nothing that poll, never a negative rate."""
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE ticks (n bigint)")
        db.execute("INSERT INTO ticks VALUES (100)")
        clock = ManualClock()
        src = make(pg_url, clock=clock, interval=5.0, queries={"ticks": "SELECT n FROM ticks", "level": "SELECT n "
                                                               "FROM ticks"}, rates=["ticks"])

        async def step(seconds: float, n: int):
            clock.advance(seconds)
            db.execute("UPDATE ticks SET n = %s", (n,))
            by = await poll(src)
            assert by["level"].value == n  # a plain query reads the number as it is
            return by["ticks"]

        try:
            first = await step(0, 100)
            assert first.ok and first.value is None and first.detail.startswith("warming up")
            assert src.next_delay() == 2.0  # the second sample comes as soon as a window is long enough
            tiny = await step(0.5, 160)
            assert tiny.ok and tiny.value is None and "shorter than 2s" in tiny.detail
            rate = await step(1.5, 400)
            assert rate.value == pytest.approx((400 - 100) / 2.0)  # from the kept baseline, over 2 s
            assert src.next_delay() == 5.0
            assert (await step(2.0, 1000)).value == pytest.approx(300.0)
            down = await step(2.0, 50)  # pg_stat_reset(), a restart: no reading, not -475/s
            assert down.ok and down.value is None and down.detail.startswith("counter reset")
            assert (await step(1.5, 80)).value is None  # under the window: the reset sample stays the baseline
            assert (await step(0.5, 90)).value == pytest.approx(20.0)
            src.reset()  # a failed poll forgets the baseline: a rate never spans an outage
            assert (await step(30.0, 5000)).value is None
            assert (await step(2.5, 5025)).value == pytest.approx(10.0)
        finally:
            await src.aclose()


async def test_tps_from_pg_stat_database_between_two_polls(pg_url):
    """Commits a known number of transactions between two polls on a manual clock: the
    source's TPS is that number over the window (plus the few transactions the sessions
    themselves commit), and pg_stat_reset() reads as a reset, not a negative rate."""
    clock = ManualClock()
    src = make(pg_url, clock=clock, queries={"tps": TPS}, rates=["tps"])

    def commit(n: int) -> None:
        with psycopg.connect(pg_url, autocommit=True) as w:
            for _ in range(n):
                w.execute("SELECT 1")  # one committed transaction each
            w.execute("SELECT pg_stat_force_next_flush()")  # counted before this answer comes back

    try:
        assert (await poll(src))["tps"].detail.startswith("warming up")
        commit(600)
        clock.advance(2.0)
        tps = (await poll(src))["tps"].value
        print(f"\nTPS: 600 committed over 2.0 s (300/s); measured {tps:.1f}/s")
        assert 300.0 <= tps <= 300.0 + 6.0  # at most a dozen of the sessions' own (connect, flush)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_stat_reset()")
            admin.execute("SELECT pg_stat_force_next_flush()")
        clock.advance(1.0)
        reset = (await poll(src))["tps"]
        assert reset.ok and reset.value is None and reset.detail.startswith("counter reset")
        commit(300)
        clock.advance(2.0)
        tps = (await poll(src))["tps"].value
        assert 150.0 <= tps <= 150.0 + 6.0
    finally:
        await src.aclose()


# ---------------------------------------------------------------- 3. pg_health


@pytest.fixture
def accounts(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE accounts (id int primary key, balance int, note text)")
        db.execute("INSERT INTO accounts VALUES (1, 100, '')")
    return pg_url


class Blocked:
    """A transaction holding a row lock (``holder``), and a session blocked on it from a thread."""

    def __init__(self, url: str, holder_sql: str) -> None:
        self.url = url
        self.holder = psycopg.connect(url)
        self.pid = self.holder.info.backend_pid
        self.user = self.holder.execute("SELECT current_user").fetchone()[0]
        self.holder.execute(holder_sql)
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(url, autocommit=True) as look:
            wait_until(lambda: look.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                            "wait_event_type = 'Lock'", (dbname,)).fetchone()[0] == 1,
                       10, "the waiter to block")

    def _wait(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as w:
            w.execute("UPDATE accounts SET balance = 1 WHERE id = 1")

    def release(self) -> None:
        self.holder.rollback()
        self.holder.close()
        self.thread.join(timeout=10)


def holder_part(detail: str) -> str:
    return detail.split(" · ")[0]


async def test_health_names_the_lock_holder_with_its_query_head_sanitised(accounts):
    query = "UPDATE accounts /* \x1b[31mred\x1b]52;c;aGk=\x07 */ SET balance = 0, note = 'long enough' WHERE id = 1"
    src = make(accounts, kind="pg_health", long_query_after=600.0, idle_in_transaction_after=600.0)
    block = Blocked(accounts, query)
    try:
        by = await poll(src)
    finally:
        block.release()
    try:
        row = by["component/database"]
        assert row.state == "degraded" and by["blocked_queries"].value >= 1
        part = holder_part(row.detail)  # what is wrong comes first: the table shows the start
        assert re.fullmatch(rf"\d+ blocked by pid {block.pid} \({block.user}, idle in transaction, \d+s"
                            rf"(, \+\d+ more holders?)?\): (.*)", part), part
        head = part.split("): ", 1)[1]
        assert len(head) == 60 and head.endswith("…")
        assert head == "UPDATE accounts /* ␛[31mred␛]52;c;aGk=␇ */ SET balance = 0,…"
        assert not any(ord(c) < 0x20 for c in row.detail)
        after = await poll(src)
        assert f"pid {block.pid}" not in after["component/database"].detail
    finally:
        await src.aclose()


async def test_a_secret_in_the_holders_query_is_redacted_before_the_head_is_cut(accounts):
    from cockpit.safetext import SECRETS

    secret = "hunter2-correct-horse-battery"
    SECRETS.add(secret)  # as every env: value the config references is
    prefix = "UPDATE accounts SET note = '"
    query = prefix + "x" * (52 - len(prefix)) + secret + "' WHERE id = 1"  # the secret straddles the cut
    src = make(accounts, kind="pg_health", long_query_after=600.0)
    block = Blocked(accounts, query)
    try:
        detail = (await poll(src))["component/database"].detail
    finally:
        block.release()
        await src.aclose()
    assert f"pid {block.pid}" in detail and "hunter" not in detail and "xxxx[redact…" in detail


async def test_sessions_idle_in_a_transaction_are_a_series_and_a_degraded_cause(accounts):
    quick = make(accounts, kind="pg_health", long_query_after=600.0, idle_in_transaction_after=0.3)
    patient = make(accounts, kind="pg_health", long_query_after=600.0, idle_in_transaction_after=3600.0)
    idle = psycopg.connect(accounts)
    try:
        idle.execute("SELECT balance FROM accounts WHERE id = 1")  # then nothing: idle in transaction
        await poll(quick)  # connected: the next poll's timing is the check's alone
        await poll(patient)
        import asyncio

        await asyncio.sleep(0.6)
        fast, slow = await poll(quick), await poll(patient)
        assert fast["idle_in_transaction"].value >= slow["idle_in_transaction"].value + 1
        row = fast["component/database"]
        assert row.state in ("degraded", "unhealthy")
        n = int(fast["idle_in_transaction"].value)
        assert f"{n} idle in transaction > 0.3s" in row.detail
        assert "idle in transaction > 60m" in slow["component/database"].detail
    finally:
        idle.close()
        await quick.aclose()
        await patient.aclose()


async def test_connections_on_the_database_and_of_the_usable_slots(pg_url):
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as db:
        most, su, reserved = db.execute(
            "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,"
            " coalesce(current_setting('reserved_connections', true), '0')::int").fetchone()
    usable = most - su - reserved
    src = make(pg_url, kind="pg_health")
    others = [psycopg.connect(pg_url) for _ in range(3)]  # and the source's own: 4
    try:
        by = await poll(src)
    finally:
        for c in others:
            c.close()
        await src.aclose()
    assert by["db_connections"].value == 3 + 1
    used = by["connections"].value
    assert used >= 4 and by["connections_ratio"].value == pytest.approx(used / usable)
    assert f"connections: 4 on {dbname} / {int(used)} of {usable} usable" in by["component/database"].detail
    print(f"\nconnections: 4 on the test database, {int(used)} of {usable} usable "
          f"(max_connections {most} - superuser_reserved {su} - reserved {reserved})")

    # a URL without a database: the server-wide count alone
    server = make("postgresql://127.0.0.1:5432", kind="pg_health")
    try:
        by = await poll(server)
    finally:
        await server.aclose()
    assert by["db_connections"].value is None and by["db_connections"].detail == "the URL names no database"
    assert re.search(rf"connections: \d+ of {usable} usable", by["component/database"].detail)
    assert " on " not in by["component/database"].detail.split("connections: ")[1].split(" · ")[0]


async def test_connections_near_the_usable_limit_are_unhealthy(pg_url):
    """The ratio is of the usable slots: with max_connections 100 and 3 reserved, 97 in use
    is 100%, not 97%."""
    src = make(pg_url, kind="pg_health", connections_warn=0.001, connections_crit=0.002)
    try:
        row = (await poll(src))["component/database"]
    finally:
        await src.aclose()
    assert row.state == "unhealthy" and "usable" in row.detail
