"""The demo's config, built in code; ``examples/demo.toml`` is the same as a file."""

from __future__ import annotations

from cockpit.config import CockpitConfig, config_from_dict
from cockpit.simulator import COMPONENTS


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
             "max_backoff": 2.0},
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
    }


def demo_config(base_url: str) -> CockpitConfig:
    return config_from_dict(demo_raw(base_url), "<demo>", {})
