"""Every source kind through its faults, watched on the dashboard.

Each family of sources reads a real server through a loopback fault proxy
(tests/faultproxy.py): the simulator and Prometheus for the HTTP kinds, PostgreSQL
for the database kinds, moto's server for the AWS kinds. One cockpit per family
runs while the proxy turns each fault on and off:

refused, timeout (no answer), slow (answers later than the poll interval), 5xx,
malformed answer, wrong credentials.

For every fault, every panel fed by the family must say what is wrong, in words the
on-call can act on (the table below is what they see), and must come back to a
fresh value once the fault is gone, without a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable


from screens.app import CockpitApp
from cockpit.config import config_from_dict
from faultproxy import FaultProxy, http_reply
from screens.panels import ComponentsPanel

FAULTS = ("refused", "timeout", "slow", "5xx", "malformed", "credentials")
TOKEN = "s3cret-token"
INTERVAL, TIMEOUT = 0.5, 2.5  # a slow answer (1 s) takes 2x the interval, well within the timeout

SERVICE_UNAVAILABLE = http_reply(503, "Service Unavailable", b"upstream overloaded\n")
NOT_JSON = http_reply(200, "OK", b"<html><body>Welcome to nginx!</body></html>", "text/html")


def poll(**kw) -> dict:
    return {"interval": INTERVAL, "timeout": TIMEOUT, "max_backoff": 1.0, **kw}


AWS_POLL = {"interval": 1.0, "timeout": 4.0, "max_backoff": 2.0}  # AWS sources poll at most once a second


# ---------------------------------------------------------------- reading the screen


def panel_text(app: CockpitApp, selector: str) -> str:
    w = app.screen.query_one(selector)
    return f"{w.render().plain} {w.border_title} {w.border_subtitle}"


def component_text(app: CockpitApp, name: str) -> str:
    """The component row called ``name``: status and detail as drawn."""
    table = app.screen.query_one(ComponentsPanel).table
    for key in table.rows:
        cells = [getattr(c, "plain", str(c)) for c in table.get_row(key)]
        if cells[0] == name:
            return " ".join(cells)
    return ""


def is_fresh(text: str) -> bool:
    """A current value: no failure word, and not an old value shown with its age."""
    return bool(text) and not any(word in text for word in ("ERROR", "STALE", "WAITING", "UNREACHABLE", "UNKNOWN",
                                                            " old"))


Watch = dict[str, Callable[[CockpitApp], str]]


async def run_faults(pilot, app: CockpitApp, watch: Watch, expect: dict[str, dict[str, str]],
                     apply: Callable[[str], None], heal: Callable[[], None], nudge: bool = False) -> None:
    """Turn each fault on, wait for every watched place to say ``expect[place][fault]``,
    turn it off, wait for every place to be fresh again. The sources under test are the
    ones not named ``sim*`` (those feed the other panels, straight from a simulator).
    ``nudge``: press ctrl+r (poll now) every second meanwhile, as an on-call would for
    a source polled once a minute."""
    def shown() -> str:
        return "\n".join(f"  {place}: {read(app)!r}" for place, read in watch.items())

    async def until(condition: Callable[[], bool], what: str, seconds: float = 25.0) -> None:
        deadline = time.monotonic() + seconds
        next_nudge = time.monotonic() + 1.0
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {seconds}s waiting for {what}; shown:\n{shown()}")
            if nudge and time.monotonic() > next_nudge:
                await pilot.press("ctrl+r")
                next_nudge = time.monotonic() + 1.0
            await pilot.pause(0.05)

    await until(lambda: all(is_fresh(read(app)) for read in watch.values()), "data on every panel before the faults")
    for fault in FAULTS:
        apply(fault)
        if fault == "slow":
            polls = {name: st.polls for name, st in app.poller.state.items() if not name.startswith("sim")}
            slow_until = time.monotonic() + 5.0
            await until(lambda: time.monotonic() > slow_until, "five seconds of slow answers")
            for place, read in watch.items():
                assert is_fresh(read(app)), f"slow answers: {place} shows {read(app)!r}"
            moved = {name: app.poller.state[name].polls - n for name, n in polls.items()}
            # every source kept answering (late), one poll at a time: never stacked up
            assert all(1 <= n <= 8 for n in moved.values()), moved
        else:
            await until(lambda: all(expect[p][fault] in read(app) for p, read in watch.items()),
                        f"{fault}: {({p: expect[p][fault] for p in watch})}")
        heal()
        await until(lambda: all(is_fresh(read(app)) for read in watch.values()), f"recovery after {fault}")


def app_for(raw: dict) -> CockpitApp:
    return CockpitApp(config_from_dict(raw, "<faults>", {}), mode="LIVE")


def skeleton(**panels) -> dict:
    return {"service": {"name": "faults", "environment": "test", "production": False},
            "settings": {"refresh": 0.2}, "sources": [], "panels": panels}


def beside(sim_url: str, raw: dict) -> dict:
    """The panels a family does not feed, read straight from a simulator (no faults)."""
    raw["sources"] += [{"name": "sim_health", "kind": "http_health", "url": f"{sim_url}/health", **poll()},
                       {"name": "sim", "kind": "prom_scrape", "url": f"{sim_url}/metrics",
                        "cost_metric": "ai_token_cost_usd_total", **poll()}]
    panels = {"health": {"sources": ["sim_health"]}, "error_rate": {"series": "sim:error_rate", "unit": "ratio"},
              "latency": {"series": "sim:latency_p95", "unit": "seconds"},
              "cost": {"series": "sim:cost_per_day", "unit": "usd_per_day"}}
    raw["panels"] = {**panels, **raw["panels"]}
    return raw


# ---------------------------------------------------------------- HTTP kinds

HTTP_SAYS = {"refused": "connection refused", "timeout": "timed out", "5xx": "HTTP 503", "credentials": "HTTP 401"}
HTTP_EXPECT = {
    "health (http_health)": {**HTTP_SAYS, "malformed": "HTTP 200, body lacks 'ok'"},
    "component api (http_components)": {**HTTP_SAYS, "malformed": "HTTP 200, body lacks 'status'"},
    "error rate (prom_scrape)": {**HTTP_SAYS, "malformed": "malformed metrics at line 1"},
    "latency (prom_query)": {**HTTP_SAYS, "malformed": "not a Prometheus answer"},
}


async def test_http_kinds_show_each_fault_and_recover(make_sim_server, prometheus, monkeypatch):
    sim = make_sim_server(faults=())
    to_sim = FaultProxy(int(sim.url.rsplit(":", 1)[1]))
    to_prom = FaultProxy(int(prometheus.rsplit(":", 1)[1]))
    monkeypatch.setenv("FAULT_TOKEN", f"Bearer {TOKEN}")
    auth = {"headers": {"Authorization": "env:FAULT_TOKEN"}}
    raw = skeleton(health={"sources": ["health"]}, components={"sources": ["components"]},
                   error_rate={"series": "metrics:error_rate", "unit": "ratio"},
                   latency={"series": "prom:latency_p95", "unit": "seconds"},
                   cost={"series": "metrics:cost_per_day", "unit": "usd_per_day"})
    raw["sources"] = [
        {"name": "health", "kind": "http_health", "url": f"{to_sim.url}/health", "expect_body": "ok", **auth,
         **poll()},
        {"name": "components", "kind": "http_components", "url": f"{to_sim.url}/health/component/{{name}}",
         "components": ["api", "worker"], "expect_body": "status", **auth, **poll()},
        {"name": "metrics", "kind": "prom_scrape", "url": f"{to_sim.url}/metrics",
         "cost_metric": "ai_token_cost_usd_total", **auth, **poll()},
        {"name": "prom", "kind": "prom_query", "url": to_prom.url, "backfill": 0, **auth, **poll(),
         "queries": {"latency_p95": "histogram_quantile(0.95, sum by (le) "
                                    "(rate(http_request_duration_seconds_bucket[15s])))"}},
    ]
    watch: Watch = {
        "health (http_health)": lambda app: panel_text(app, "#health"),
        "component api (http_components)": lambda app: component_text(app, "api"),
        "error rate (prom_scrape)": lambda app: panel_text(app, "#error-rate"),
        "latency (prom_query)": lambda app: panel_text(app, "#latency"),
    }
    proxies = (to_sim, to_prom)

    def apply(fault: str) -> None:
        if fault == "credentials":
            monkeypatch.setenv("FAULT_TOKEN", "Bearer expired-token")
        for p in proxies:
            p.set(*{"refused": ("refuse",), "timeout": ("hang",), "slow": ("slow",), "5xx": ("reply",),
                    "malformed": ("reply",), "credentials": ("gate",)}[fault],
                  delay=2 * INTERVAL, reply=SERVICE_UNAVAILABLE if fault == "5xx" else NOT_JSON,
                  needle=f"authorization: Bearer {TOKEN}".encode())

    def heal() -> None:
        monkeypatch.setenv("FAULT_TOKEN", f"Bearer {TOKEN}")
        for p in proxies:
            p.set("gate", needle=f"authorization: Bearer {TOKEN}".encode())

    heal()
    app = app_for(raw)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await run_faults(pilot, app, watch, HTTP_EXPECT, apply, heal)
    finally:
        for p in proxies:
            p.close()


# ---------------------------------------------------------------- PostgreSQL kinds

# the panels have room for the start of a line: the cause comes first
PG_EXPECT = {
    "cost (pg_query)": {
        "refused": "cannot connect: connection refused", "timeout": "timed out",
        "5xx": 'cannot connect: database "cockpit_', "malformed": "cannot connect: received invalid",
        "credentials": 'cannot connect: role "cockpit_no'},
    "component database (pg_health)": {
        "refused": "cannot connect: connection refused", "timeout": "timed out",
        "5xx": 'cannot connect: database "cockpit_', "malformed": "cannot connect: received invalid response",
        "credentials": 'cannot connect: role "cockpit_nobody" does not'},
}


async def test_postgres_kinds_show_each_fault_and_recover(pg_url, make_sim_server, monkeypatch):
    import psycopg

    from conftest import PG_ADMIN

    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE ai_action_logs (token_usage int, created_at timestamptz DEFAULT now())")
        db.execute("INSERT INTO ai_action_logs (token_usage) SELECT 1000 FROM generate_series(1, 500)")
    proxy = FaultProxy(5432)
    good = f"postgresql://127.0.0.1:{proxy.port}/{dbname}"
    monkeypatch.setenv("FAULT_DB", good)
    raw = beside(make_sim_server(faults=()).url,
                 skeleton(components={"sources": ["db"]}, cost={"series": "cost:cost_today", "unit": "usd"}))
    raw["sources"] += [
        {"name": "cost", "kind": "pg_query", "database": "env:FAULT_DB", **poll(), "statement_timeout": 1.0,
         "queries": {"cost_today": "SELECT SUM(token_usage * 0.00002) FROM ai_action_logs "
                                   "WHERE created_at >= CURRENT_DATE"}},
        {"name": "db", "kind": "pg_health", "database": "env:FAULT_DB", **poll(), "statement_timeout": 1.0},
    ]
    watch: Watch = {
        "cost (pg_query)": lambda app: panel_text(app, "#cost"),
        "component database (pg_health)": lambda app: component_text(app, "database"),
    }

    def allow_connections(allowed: bool) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')

    def apply(fault: str) -> None:
        if fault == "credentials":
            monkeypatch.setenv("FAULT_DB", f"postgresql://cockpit_nobody@127.0.0.1:{proxy.port}/{dbname}")
        if fault == "5xx":  # the real server refuses: the database is closed to new connections
            allow_connections(False)
        proxy.set({"refused": "refuse", "timeout": "hang", "slow": "slow", "malformed": "reply"}.get(fault, "pass"),
                  delay=2 * INTERVAL, reply=NOT_JSON)

    def heal() -> None:
        monkeypatch.setenv("FAULT_DB", good)
        allow_connections(True)
        proxy.set("pass")

    app = app_for(raw)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await run_faults(pilot, app, watch, PG_EXPECT, apply, heal)
    finally:
        proxy.close()
        allow_connections(True)


# ---------------------------------------------------------------- AWS kinds

AWS_SAYS = {"refused": "cannot reach http://127.0.0.1", "timeout": "timed out",
            "5xx": "HTTP 503: upstream overloaded", "malformed": "not an AWS answer",
            "credentials": "AWS rejected the credentials"}
AWS_EXPECT = {place: AWS_SAYS for place in ("5xx errors (cloudwatch)", "ERROR lines (cloudwatch_logs)",
                                            "cost (cost_explorer)", "component logs-table (aws_status)")}


def seed_aws(moto_url: str) -> None:
    """Seed 000's estate: API Gateway 5XX datapoints, ERROR log lines, the action-log table, today's cost."""
    import urllib.request
    from datetime import date, datetime, timedelta, timezone

    import boto3

    c = {s: boto3.client(s, endpoint_url=moto_url, region_name="us-east-1") for s in ("cloudwatch", "logs", "dynamodb")}
    now = datetime.now(timezone.utc)
    c["cloudwatch"].put_metric_data(Namespace="AWS/ApiGateway", MetricData=[
        {"MetricName": "5XXError", "Dimensions": [{"Name": "ApiName", "Value": "ai-api"}], "Value": 3,
         "Timestamp": now - timedelta(minutes=m)} for m in (1, 2, 3)])
    c["logs"].create_log_group(logGroupName="/aws/lambda/bedrock-ai-core")
    c["logs"].create_log_stream(logGroupName="/aws/lambda/bedrock-ai-core", logStreamName="s")
    ms = int(time.time() * 1000)
    c["logs"].put_log_events(logGroupName="/aws/lambda/bedrock-ai-core", logStreamName="s", logEvents=[
        {"timestamp": ms - 1000 * (10 - i), "message": f"ERROR ThrottlingException {i}"} for i in range(10)])
    c["dynamodb"].create_table(TableName="ai-action-logs", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               BillingMode="PAY_PER_REQUEST")
    today = date.today()
    results = [{"ResultsByTime": [{"TimePeriod": {"Start": today.isoformat(), "End": today.isoformat()},
                                   "Total": {"UnblendedCost": {"Amount": "42.50", "Unit": "USD"}}}]}]
    urllib.request.urlopen(urllib.request.Request(
        f"{moto_url}/moto-api/static/ce/cost-and-usage-results", method="POST",
        data=json.dumps({"results": results}).encode(), headers={"Content-Type": "application/json"}), timeout=10)


def moto_auth(moto_url: str, enforced: bool) -> None:
    """moto checks signatures and IAM policies (``enforced``) or lets every request through."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset-auth", method="POST",
                                                  data=b"0" if enforced else b"inf",
                                                  headers={"Content-Type": "text/plain"}), timeout=10).close()


async def test_aws_kinds_show_each_fault_and_recover(moto_url, make_sim_server, tmp_path, monkeypatch):
    import boto3

    from cockpit import aws

    seed_aws(moto_url)
    # a user whose keys the cockpit reads from a credentials file, as on a laptop
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1")
    iam.create_user(UserName="oncall")
    iam.put_user_policy(UserName="oncall", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    first, spare = (iam.create_access_key(UserName="oncall")["AccessKey"] for _ in range(2))
    keys = {"now": first}
    creds = tmp_path / "credentials"

    def write_credentials() -> None:
        key = keys["now"]
        creds.write_text(f"[default]\naws_access_key_id = {key['AccessKeyId']}\n"
                         f"aws_secret_access_key = {key['SecretAccessKey']}\n")

    write_credentials()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setattr(aws, "_sessions", {})
    monkeypatch.setattr(aws, "_clients", {})
    admin = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                         aws_access_key_id=spare["AccessKeyId"], aws_secret_access_key=spare["SecretAccessKey"])

    proxy = FaultProxy(int(moto_url.rsplit(":", 1)[1]))
    raw = beside(make_sim_server(faults=()).url, skeleton(
        components={"sources": ["status"]}, error_rate={"series": "cw:errors_5xx", "unit": "count"},
        latency={"series": "logs:errors", "unit": "count"}, cost={"series": "ce:cost_today", "unit": "usd"}))
    raw["aws"] = {"endpoint_url": proxy.url, "region": "us-east-1", "max_attempts": 2, "timeout": 3.0}
    raw["sources"] += [
        {"name": "cw", "kind": "cloudwatch", "period": 60, "lookback": 900, **AWS_POLL, "metrics": {
            "errors_5xx": {"namespace": "AWS/ApiGateway", "metric": "5XXError", "stat": "Sum",
                           "dimensions": {"ApiName": "ai-api"}}}},
        {"name": "logs", "kind": "cloudwatch_logs", "log_group": "/aws/lambda/bedrock-ai-core", "pattern": "ERROR",
         "window": 900, **AWS_POLL},
        {"name": "ce", "kind": "cost_explorer", **AWS_POLL, "interval": 3600},
        {"name": "status", "kind": "aws_status", **AWS_POLL,
         # (a DynamoDB table: moto's signature check fails Lambda's REST calls even with good keys)
         "checks": [{"name": "logs-table", "type": "dynamodb", "table": "ai-action-logs"}]},
    ]
    watch: Watch = {
        "5xx errors (cloudwatch)": lambda app: panel_text(app, "#error-rate"),
        "ERROR lines (cloudwatch_logs)": lambda app: panel_text(app, "#latency"),
        "cost (cost_explorer)": lambda app: panel_text(app, "#cost"),
        "component logs-table (aws_status)": lambda app: component_text(app, "logs-table"),
    }

    def apply(fault: str) -> None:
        if fault == "credentials":  # the key in use is deleted (rotated away)
            admin.delete_access_key(UserName="oncall", AccessKeyId=first["AccessKeyId"])
            keys["now"] = spare
        proxy.set({"refused": "refuse", "timeout": "hang", "slow": "slow", "5xx": "reply", "malformed": "reply"}
                  .get(fault, "pass"), delay=1.5, reply=SERVICE_UNAVAILABLE if fault == "5xx" else NOT_JSON)

    def heal() -> None:
        write_credentials()  # after a rotation: the new key, as `aws configure` would write it
        proxy.set("pass")

    moto_auth(moto_url, True)
    app = app_for(raw)
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await run_faults(pilot, app, watch, AWS_EXPECT, apply, heal, nudge=True)
    finally:
        moto_auth(moto_url, False)
        proxy.close()
