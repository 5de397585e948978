"""The job console: what reaches it and what only the log file holds."""

from __future__ import annotations

import logging

import pytest

from pipelines import job


@pytest.fixture
def job_console(capsys, tmp_path, monkeypatch):
    """``setup_logging`` into ``tmp_path`` (its console is capsys's stderr); the root logger's handlers as they were afterwards."""
    monkeypatch.setenv("HANDDIFF_LOG_DIR", str(tmp_path))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    log_file = job.setup_logging("console-test")
    yield log_file
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_a_job_run_inside_another_is_quiet_but_for_its_resource_waits(job_console, capsys):
    logging.getLogger("handdiff.generate").info("outer line")
    with job.quiet():
        logging.getLogger("handdiff.generate").info("inner line")
        print("inner report")
        logging.getLogger("handdiff.waits").warning("generate: nothing written for 61 s; Ray's pending demands: 1 x {CPU 1}")
    logging.getLogger("botocore").warning("a library's line")
    console = capsys.readouterr()
    assert "outer line" in console.err and "nothing written for 61 s" in console.err
    assert "inner line" not in console.err + console.out and "inner report" not in console.out
    assert "a library's line" not in console.err
    logged = job_console.read_text()
    for line in ("outer line", "inner line", "inner report", "nothing written for 61 s", "a library's line"):
        assert line in logged, line


def test_a_job_run_by_another_goes_through_the_same_checks(tmp_path, capsys):
    """``run_checked`` is the one way a job runs once Ray is up, a demo step included: a step whose
    inputs are not there says so, one line per input, and nothing runs."""
    from pipelines.demo_configs import demo_config

    cfg = demo_config("build-hand-crops", str(tmp_path / "nothing-annotated"))
    ran: list = []
    assert job.run_checked(cfg, lambda c: ran.append(c) or 0, name="build-hand-crops") == 2
    assert not ran
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("error: build-hand-crops: ") and len(lines) == len(cfg.sources)
    for name in cfg.sources:
        assert any(f"sources.{name}.path" in line and "nothing-annotated" in line for line in lines), (name, lines)
