"""Grading and scoring, and the injector parameter validation every lab file goes through."""

from __future__ import annotations

import pytest
from obslab.labs.grader import grade, score
from obslab.labs.injectors import INJECTORS, InjectorError, load_all


def test_grade_right_and_wrong_without_giving_it_away() -> None:
    right = grade("cpu", ["utilization"], "runaway-batch-job", "cpu", "utilization", "runaway-batch-job")
    assert right.correct and right.matched == 3
    near = grade("cpu", ["utilization"], "runaway-batch-job", "cpu", "utilization", "disk-full")
    far = grade("cpu", ["utilization"], "runaway-batch-job", "disk", "errors", "disk-full")
    one = grade("cpu", ["utilization"], "runaway-batch-job", "cpu", "errors", "disk-full")
    assert (near.matched, one.matched, far.matched) == (2, 1, 0)
    assert not (near.correct or one.correct or far.correct)
    for v in (near, one, far):  # feedback never names the expected values
        for word in ("cpu", "runaway", "batch"):
            assert word not in v.feedback.lower()
    # a lab may accept more than one signal (a saturated link is also 100% utilized)
    assert grade("network", ["saturation", "utilization"], "bw", "network", "utilization", "bw").correct


def test_score() -> None:
    assert score(0, 0, 60) == 100
    assert score(1, 0, 60) == 85
    assert score(0, 2, 60) == 80
    assert score(0, 0, 120 + 300) == 80  # 10 half-minutes late x 2
    assert score(0, 0, 10_000) == 70  # the time penalty is capped at 30
    assert score(3, 9, 10_000) == 10  # never below 10 once solved


def test_injector_params_validated_and_bounded() -> None:
    load_all()
    assert {
        "cpu_hog",
        "cpu_quota",
        "memory_leak",
        "memory_thrash",
        "fsync_storm",
        "fill_disk",
        "packet_loss",
        "bandwidth_cap",
    } <= set(INJECTORS)
    hog = INJECTORS["cpu_hog"]
    assert hog.validate({})["process_name"] == "thumbnailer"
    assert hog.validate({"workers_per_cpu": 2})["workers_per_cpu"] == 2.0  # int accepted for a float
    with pytest.raises(InjectorError) as e:
        hog.validate({"workers_per_cpu": 100.0})
    assert e.value.param == "workers_per_cpu" and "maximum" in str(e.value)
    with pytest.raises(InjectorError) as e:
        hog.validate({"cores": 2})
    assert e.value.param == "cores"
    with pytest.raises(InjectorError) as e:
        INJECTORS["packet_loss"].validate({"percent": "20"})
    assert e.value.param == "percent" and "expected int" in str(e.value)
    for inj in INJECTORS.values():  # every numeric parameter is bounded above: faults are bounded in size
        for name, spec in inj.params.items():
            if spec.kind in (int, float):
                assert spec.maximum is not None, f"{inj.name}.{name} has no maximum"
