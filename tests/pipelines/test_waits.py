"""Waits made visible (pipelines.waits): a pass that writes nothing is reported with Ray's
pending demands and free resources; progress and an idle cluster keep it quiet."""

from __future__ import annotations

import logging
import time

import pytest

from pipelines.waits import WaitReporter, pending_demands, pending_summary

pytestmark = [pytest.mark.services]


def reports(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "handdiff.waits"]


def test_a_pass_that_writes_nothing_is_reported_and_one_that_writes_is_not(ray_session, caplog):
    caplog.set_level(logging.WARNING, logger="handdiff.waits")
    with WaitReporter("busy", after_s=0.3, every_s=0.3) as waits:
        for _ in range(20):  # a batch every 0.05 s: never idle for 0.3 s
            time.sleep(0.05)
            waits.progress()
    assert reports(caplog) == []
    with WaitReporter("stuck", after_s=0.3, every_s=0.3):
        deadline = time.monotonic() + 5
        while not reports(caplog) and time.monotonic() < deadline:
            time.sleep(0.05)
    (first, *_) = reports(caplog)
    assert first.startswith("stuck: nothing written for ") and "Ray's pending demands: " in first and " CPUs, " in first


def test_while_pending_reports_only_when_ray_has_something_waiting(ray_session, caplog):
    caplog.set_level(logging.WARNING, logger="handdiff.waits")
    deadline = time.monotonic() + 30  # an earlier test's demands leave Ray's status within seconds
    while pending_demands() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pending_demands() == [], "the shared cluster still has demands it cannot place"
    with WaitReporter("train", after_s=0.2, every_s=0.2, while_pending=True):
        time.sleep(1.0)  # idle all along, but nothing waits on resources
    assert reports(caplog) == []
    assert "free: " in pending_summary() and "GPUs" in pending_summary()
