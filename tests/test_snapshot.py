"""Snapshot of the dashboard at 120x40: seeded simulator, manual clock, poller off.

Regenerate after an intended visual change with:
    .venv/bin/pytest tests/test_snapshot.py --snapshot-update
"""

from __future__ import annotations

import asyncio

import pytest
from apphelpers import frozen_demo, prefilled_app


@pytest.fixture
def incident_app():
    server, clock = frozen_demo(seed=7, fault_at=20.0)
    try:
        yield asyncio.run(prefilled_app(server, clock, seconds=60))
    finally:
        server.stop()


@pytest.fixture
def calm_app():
    server, clock = frozen_demo(seed=7, fault_at=10_000.0)
    try:
        yield asyncio.run(prefilled_app(server, clock, seconds=30))
    finally:
        server.stop()


def test_dashboard_during_bad_deploy(snap_compare, incident_app):
    assert snap_compare(incident_app, terminal_size=(120, 40))


def test_dashboard_calm_high_contrast(snap_compare, calm_app):
    calm_app._theme_name = "cockpit-high-contrast"
    assert snap_compare(calm_app, terminal_size=(120, 40))
