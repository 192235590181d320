"""CLI contract: bad input exits 2 with a message, wrong state exits 1, --json on read commands."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from obslab.labs import api
from obslab.labs.cli import lab


def test_list_json_matches_the_api_contract(lab_state: Path) -> None:
    res = CliRunner().invoke(lab, ["list", "--json"])
    assert res.exit_code == 0
    labs = json.loads(res.stdout)
    keys = {
        "id",
        "title",
        "resource",
        "signal",
        "difficulty",
        "duration_seconds",
        "briefing",
        "answer_options",
    }
    assert all(keys <= set(x) for x in labs)
    opts = labs[0]["answer_options"]
    assert opts["resource"] == ["cpu", "memory", "disk", "network"]
    assert opts["signal"] == ["utilization", "saturation", "errors"]
    assert all(set(c) == {"id", "label"} for c in opts["cause"])


def test_usage_and_state_errors(lab_state: Path) -> None:
    r = CliRunner()
    assert json.loads(r.invoke(lab, ["status", "--json"]).stdout)["state"] == "idle"
    res = r.invoke(lab, ["start", "no-such-lab"])
    assert res.exit_code == 2 and "no lab 'no-such-lab'" in res.output
    res = r.invoke(lab, ["answer", "--resource", "gpu", "--signal", "errors", "--cause", "disk-full"])
    assert res.exit_code == 2 and "resource must be one of" in res.output
    res = r.invoke(lab, ["answer", "--resource", "cpu", "--signal", "errors", "--cause", "disk-full"])
    assert res.exit_code == 1 and "no lab is running" in res.output
    assert r.invoke(lab, ["hint"]).exit_code == 1
    assert r.invoke(lab, ["stop"]).exit_code == 1
    assert r.invoke(lab, ["selftest"]).exit_code == 2


def test_api_errors_carry_http_status(lab_state: Path) -> None:
    for call, status in (
        (lambda: api.start("nope"), 404),
        (api.hint, 409),
        (api.stop, 409),
        (lambda: api.answer("cpu", "nope", "disk-full"), 400),
        (lambda: api.start("cpu-hog", duration=1e6), 400),
    ):
        try:
            call()
        except api.LabError as e:
            assert e.http_status == status
        else:
            raise AssertionError("no LabError")
    assert api.history() == []
