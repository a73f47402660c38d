"""Snapshot of the dashboard at 120x40: seeded simulator, manual clock, poller off.

Regenerate after an intended visual change with:
    .venv/bin/pytest tests/test_snapshot.py --snapshot-update
"""

from __future__ import annotations

import asyncio

import pytest
from apphelpers import frozen_demo, prefilled_app


def _app(fault_at: float, seconds: int):
    server, clock = frozen_demo(seed=7, fault_at=fault_at)
    try:
        return asyncio.run(prefilled_app(server, clock, seconds=seconds))
    finally:
        server.stop()


@pytest.fixture
def incident_app():
    return _app(fault_at=20.0, seconds=60)


@pytest.fixture
def calm_app():
    return _app(fault_at=10_000.0, seconds=30)


def test_dashboard_during_bad_deploy(snap_compare, incident_app):
    assert snap_compare(incident_app, terminal_size=(120, 40))


def test_dashboard_calm_high_contrast(snap_compare, calm_app):
    calm_app._theme_name = "cockpit-high-contrast"
    assert snap_compare(calm_app, terminal_size=(120, 40))
