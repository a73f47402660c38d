"""The demo's config, built in code; ``examples/demo.toml`` is the same as a file."""

from __future__ import annotations

from cockpit.config import CockpitConfig, config_from_dict
from cockpit.drill.simulator import COMPONENTS


def demo_raw(base_url: str) -> dict:
    base = base_url.rstrip("/")
    return {
        "service": {"name": "checkout-api", "environment": "demo", "production": False},
        "settings": {"history": 3600, "refresh": 0.5},
        "sources": [
            {"name": "health", "kind": "http_health", "url": f"{base}/health", "interval": 1.0, "timeout": 0.8,
             "max_backoff": 2.0},
            {
                "name": "components",
                "kind": "http_components",
                "url": f"{base}/health/component/{{name}}",
                "components": list(COMPONENTS),
                "interval": 1.0,
                "timeout": 0.8,
                "max_backoff": 2.0,
            },
            {"name": "metrics", "kind": "prom_scrape", "url": f"{base}/metrics", "interval": 1.0, "timeout": 0.8,
             "max_backoff": 2.0, "cost_metric": "ai_token_cost_usd_total",
             # the simulator's counters move in 0.1 s steps: the first rate, over 0.5 s, is as
             # good as one over 1 s (request rate within 2% vs 1.2%, cost 3.7% vs 2.4%, 40 seeds)
             # and shows half a second sooner; later ones are over the 1 s between polls
             "min_rate_window": 0.5},
        ],
        "panels": {
            "health": {"sources": ["health"]},
            "error_rate": {"series": "metrics:error_rate", "unit": "ratio",
                           "threshold": {"warn": 0.05, "critical": 0.10}},
            "latency": {
                "series": "metrics:latency_p95",
                "also": ["metrics:latency_p50", "metrics:latency_p99"],
                "unit": "seconds",
                "threshold": {"warn": 0.5, "critical": 1.0},
            },
            "cost": {"series": "metrics:cost_per_day", "unit": "usd_per_day",
                     "threshold": {"warn": 80.0, "critical": 100.0}},
            "components": {"sources": ["components"]},
        },
        "actions": demo_actions(base),
    }


def demo_actions(base: str) -> list[dict]:
    """The four card actions, against the simulator's admin endpoints: each really
    changes the simulated service, so the panels show whether it helped."""
    common = {"kind": "http", "method": "POST", "state_url": f"{base}/admin/state", "effect_after": 10.0,
              "verify_timeout": 10.0}
    return [
        {**common, "key": "e", "name": "Emergency mode", "target": "ai-gateway", "url": f"{base}/admin/emergency",
         "body": {"on": True}, "undo_body": {"on": False}, "components": ["ai-gateway"],
         "verify_url": f"{base}/admin/state", "verify_echo": {"emergency": "on"},
         "description": "Fallback responses instead of model calls (seed 000: EMERGENCY_MODE, FALLBACK_RESPONSES)",
         "expected": "cost burn falls to about a tenth; ai-gateway degraded (fallback responses)"},
        {**common, "key": "r", "name": "Rollback", "target": "checkout-api", "url": f"{base}/admin/rollback",
         "destructive": True, "components": ["api"], "verify_url": f"{base}/health/component/api",
         "description": "Back to the previous release (seed 001)",
         "expected": "error rate back under 1% and api healthy within a minute"},
        {**common, "key": "s", "name": "Scale out", "target": "checkout-api replicas", "url": f"{base}/admin/scale",
         "body": {"replicas": 6}, "undo_body": {"replicas": 3}, "components": ["api", "worker"],
         "description": "3 -> 6 replicas (seed 001: ecs update-service --desired-count)",
         "expected": "p95 latency down by about a fifth; database pool pressure relieved"},
        {**common, "key": "b", "name": "Restore backup", "target": "checkout-db", "url": f"{base}/admin/restore",
         "destructive": True, "guard": "type_to_confirm", "components": ["database"],
         "verify_url": f"{base}/health/component/database",
         "description": "Restore the latest backup (seed 000: verify data integrity)",
         "expected": "database healthy; the corrupted rows replaced"},
    ]


def demo_config(base_url: str) -> CockpitConfig:
    return config_from_dict(demo_raw(base_url), "<demo>", {})
