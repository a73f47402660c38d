"""The per-seed example configs: each loads, and `cockpit check` reaches every source
when its endpoints are pointed at stand-ins that speak the real protocols (the
simulator for HTTP, Debian's Prometheus, moto's server for AWS, the local PostgreSQL),
with nothing but COCKPIT_ overrides and the environment variables the file references."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from cockpit.config import load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEEDS = {"ai-data-processor.toml": "seed 001"}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_example_loads_and_names_its_runbook(name):
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.startswith("# ") and SEEDS[name] in text.splitlines()[0]
    config = load_config(EXAMPLES / name, environ={})
    assert config.actions and config.panels.components.sources


def check(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit.cli", "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_ai_data_processor_checks_green_against_stand_ins(prometheus, moto_url, pg_url, sim_server):
    ecs = boto3.client("ecs", endpoint_url=moto_url, region_name="eu-central-1")
    ecs.create_cluster(clusterName="ai-processor-prod")
    ecs.register_task_definition(family="ai-processor", containerDefinitions=[{"name": "app", "image": "x",
                                                                               "memory": 512}])
    ecs.create_service(cluster="ai-processor-prod", serviceName="ai-processor-service-prod",
                       taskDefinition="ai-processor:1", desiredCount=0)
    env = {"COCKPIT_SOURCES__HEALTH__URL": f"{sim_server.url}/health", "COCKPIT_SOURCES__PROM__URL": prometheus,
           "COCKPIT_AWS__ENDPOINT_URL": moto_url, "AI_PROCESSOR_DB_URL": pg_url}
    out = check(EXAMPLES / "ai-data-processor.toml", env)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[2:]}
    assert set(rows) == {"health", "prom", "ecs", "db"}
    assert "error_rate 0." in rows["prom"] and "latency_p95" in rows["prom"]
    assert "ai-processor-service" in rows["ecs"] and "postgres healthy" in rows["db"]
    # the same file with the database away: check says so and exits 1
    down = check(EXAMPLES / "ai-data-processor.toml", {**env, "AI_PROCESSOR_DB_URL": "postgresql://127.0.0.1:1/x"})
    assert down.returncode == 1 and "cannot connect" in down.stdout
