"""CloudWatch sources through boto3 against moto's server: GetMetricData for API Gateway
5XX and Lambda errors, Logs FilterLogEvents for seed 000's ERROR pattern."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from cockpit.clock import SystemClock
from cockpit.config import ConfigError, config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.signals.sources import SourceContext, SourceError, build_source


def make(moto_url: str, src: dict):
    raw = demo_raw("http://127.0.0.1:9")
    raw["aws"] = {"endpoint_url": moto_url, "region": "us-east-1", "max_attempts": 1}
    raw["sources"].append({"name": "aws", "interval": 60, **src})
    return build_source(config_from_dict(raw, "<t>", {}).source("aws"), SourceContext(SystemClock()))


@pytest.fixture
def metrics(moto_url):
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    now = datetime.now(timezone.utc)
    for minutes_ago, errors, count, duration_ms in ((6, 1, 900, 300.0), (3, 4, 1000, 420.0), (1, 37, 1100, 2100.0)):
        at = now - timedelta(minutes=minutes_ago)
        cw.put_metric_data(Namespace="AWS/ApiGateway", MetricData=[
            {"MetricName": "5XXError", "Dimensions": [{"Name": "ApiName", "Value": "ai-api"}], "Timestamp": at,
             "Value": errors},
            {"MetricName": "Count", "Dimensions": [{"Name": "ApiName", "Value": "ai-api"}], "Timestamp": at,
             "Value": count}])
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[
            {"MetricName": "Duration", "Dimensions": [{"Name": "FunctionName", "Value": "bedrock-ai-core"}],
             "Timestamp": at, "Value": duration_ms}])
    return cw


async def test_newest_datapoint_of_each_metric(moto_url, metrics):
    src = make(moto_url, {"kind": "cloudwatch", "period": 60, "lookback": 900, "metrics": {
        "errors_5xx": {"namespace": "AWS/ApiGateway", "metric": "5XXError", "dimensions": {"ApiName": "ai-api"}},
        "requests": {"namespace": "AWS/ApiGateway", "metric": "Count", "dimensions": {"ApiName": "ai-api"}},
        "lambda_duration": {"namespace": "AWS/Lambda", "metric": "Duration", "stat": "Maximum", "scale": 0.001,
                            "dimensions": {"FunctionName": "bedrock-ai-core"}},
        "throttles": {"namespace": "AWS/DynamoDB", "metric": "ThrottledRequests", "dimensions": {"TableName": "t"}},
    }})
    by = {r.series: r for r in await src.fetch()}
    assert by["errors_5xx"].value == 37 and by["requests"].value == 1100
    assert by["lambda_duration"].value == pytest.approx(2.1)
    assert not by["throttles"].ok and by["throttles"].error == "throttles: no datapoints in the last 15 min"


async def test_cloudwatch_unreachable_is_one_line(closed_port):
    src = make(f"http://127.0.0.1:{closed_port}", {"kind": "cloudwatch", "metrics": {
        "errors": {"namespace": "AWS/Lambda", "metric": "Errors"}}})
    with pytest.raises(SourceError) as err:
        await src.fetch()
    assert str(err.value).startswith("cannot reach http://127.0.0.1:") and "\n" not in str(err.value)
    assert str(err.value).endswith(" (cloudwatch:GetMetricData)")


async def test_error_log_lines_in_the_window(moto_url):
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    logs.create_log_group(logGroupName="/aws/lambda/bedrock-ai-core")
    logs.create_log_stream(logGroupName="/aws/lambda/bedrock-ai-core", logStreamName="2026/11/23")
    now = int(time.time() * 1000)
    events = [{"timestamp": now - 60_000 * 30, "message": "ERROR long ago"}]  # outside 15 minutes
    events += [{"timestamp": now - 1000 * (20 - i), "message": "ERROR ThrottlingException" if i % 4 == 0 else "INFO ok"}
               for i in range(20)]
    logs.put_log_events(logGroupName="/aws/lambda/bedrock-ai-core", logStreamName="2026/11/23", logEvents=events)
    src = make(moto_url, {"kind": "cloudwatch_logs", "log_group": "/aws/lambda/bedrock-ai-core", "pattern": "ERROR",
                          "window": 900})
    (reading,) = await src.fetch()
    assert reading.series == "errors" and reading.value == 5
    assert reading.detail == "5 matching 'ERROR' in 15 min"
    missing = make(moto_url, {"kind": "cloudwatch_logs", "log_group": "/aws/lambda/nope"})
    with pytest.raises(SourceError, match=r"^ResourceNotFoundException: .*\(logs:FilterLogEvents\)$"):
        await missing.fetch()


def test_metric_config_is_checked():
    raw = demo_raw("http://127.0.0.1:9")
    for metric, says in (({"namespace": "AWS/Lambda"}, "either metric"), ({"metric": "Errors"}, "needs its namespace"),
                         ({"namespace": "AWS/Lambda", "metric": "Errors", "stat": "Median"}, "unknown statistic"),
                         ({"expression": "a/b", "metric": "x", "namespace": "y"}, "either metric")):
        raw["sources"] = raw["sources"][:3] + [{"name": "aws", "kind": "cloudwatch", "metrics": {"m": metric}}]
        with pytest.raises(ConfigError) as err:
            config_from_dict(raw, "<t>", {})
        assert says in "\n".join(err.value.problems)


async def test_cost_today_from_cost_explorer(moto_url):
    import json
    import urllib.request
    from datetime import date

    src = make(moto_url, {"kind": "cost_explorer", "interval": 3600, "services": ["Amazon Bedrock"]})
    with pytest.raises(SourceError, match="no figures for today"):
        await src.fetch()  # nothing yet: said, not read as $0
    today = date.today()
    results = [{"ResultsByTime": [{"TimePeriod": {"Start": today.isoformat(), "End": today.isoformat()},
                                   "Total": {"UnblendedCost": {"Amount": "137.42", "Unit": "USD"}},
                                   "Estimated": True}]}]
    req = urllib.request.Request(f"{moto_url}/moto-api/static/ce/cost-and-usage-results", method="POST",
                                 data=json.dumps({"results": results}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()
    (reading,) = await src.fetch()
    assert reading.series == "cost_today" and reading.value == pytest.approx(137.42)
    assert reading.detail == "estimated"
