"""Schema and catalog: every shipped lab validates; a bad file is reported with its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from obslab.labs.catalog import CATALOG_DIR, LabFileError, cause_options, load_catalog, parse_lab
from obslab.labs.cli import lab as lab_cli
from obslab.labs.grader import RESOURCES, SIGNALS

GOOD = (CATALOG_DIR / "cpu-hog.yaml").read_text()


def test_catalog_has_eight_labs_covering_every_resource_and_signal() -> None:
    labs = load_catalog()
    assert len(labs) >= 8
    per_resource = {r: [lab for lab in labs.values() if lab["resource"] == r] for r in RESOURCES}
    assert all(len(v) >= 2 for v in per_resource.values()), {k: len(v) for k, v in per_resource.items()}
    assert {lab["signal"] for lab in labs.values()} == set(SIGNALS)
    for lab in labs.values():
        assert len(lab["hints"]) >= 3
        assert lab["answer"]["resource"] == lab["resource"]
        assert lab["signal"] in lab.accepted_signals
        # the briefing is a symptom: it never names the cause id
        assert lab["answer"]["cause"] not in lab["briefing"].lower()


def test_cause_options_are_shared_and_sorted() -> None:
    labs = load_catalog()
    opts = cause_options(labs)
    assert len({o["id"] for o in opts}) == len(labs)  # one distinct cause per lab
    assert [o["label"].lower() for o in opts] == sorted(o["label"].lower() for o in opts)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "needle"),
    [
        ("resource: cpu\nsignal", "resource: gpu\nsignal", "resource", "resource: gpu"),
        ("difficulty: easy", "difficulty: brutal", "difficulty", "difficulty: brutal"),
        ("duration_seconds: 600", "duration_seconds: 99999", "duration_seconds", "duration_seconds: 99999"),
        (
            "      workers_per_cpu: 2.0",
            "      workers_per_cpu: 64.0",
            "faults[0].params.workers_per_cpu",
            "workers_per_cpu: 64",
        ),
        ("  - injector: cpu_hog", "  - injector: gpu_hog", "faults[0].injector", "injector: gpu_hog"),
        ("title: Checkout", "titel: Checkout", "titel", "titel:"),
        ("  cause: runaway-batch-job", "  cause: Runaway Job", "answer.cause", "cause: Runaway Job"),
    ],
)
def test_bad_field_reports_line_and_field(old: str, new: str, field: str, needle: str) -> None:
    assert old in GOOD
    bad = GOOD.replace(old, new, 1)
    with pytest.raises(LabFileError) as exc:
        parse_lab(bad, Path("cpu-hog.yaml"))
    err = exc.value
    assert err.field == field, str(err)
    assert err.line == _line_of(bad, needle), str(err)
    assert str(err).startswith(f"cpu-hog.yaml:{err.line}: {field}: ")


def test_missing_required_field_and_short_hint_ladder() -> None:
    data = yaml.safe_load(GOOD)
    del data["debrief"]
    with pytest.raises(LabFileError) as exc:
        parse_lab(yaml.safe_dump(data, sort_keys=False), Path("cpu-hog.yaml"))
    assert exc.value.field == "debrief" and "required" in exc.value.message
    data = yaml.safe_load(GOOD)
    data["hints"] = data["hints"][:2]
    text = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(LabFileError) as exc:
        parse_lab(text, Path("cpu-hog.yaml"))
    assert exc.value.field == "hints" and exc.value.line == _line_of(text, "hints:")
    assert "at least 3" in exc.value.message


def test_broken_yaml_and_wrong_file_name() -> None:
    with pytest.raises(LabFileError) as exc:
        parse_lab(GOOD.replace("title: Checkout", "title: [Checkout", 1), Path("cpu-hog.yaml"))
    assert exc.value.line is not None and "not valid YAML" in exc.value.message
    with pytest.raises(LabFileError) as exc:
        parse_lab(GOOD, Path("other-name.yaml"))
    assert exc.value.field == "id" and exc.value.line == 1


def test_validate_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(lab_cli, ["validate"])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "cpu-hog.yaml"
    bad.write_text(GOOD.replace("resource: cpu\nsignal", "resource: gpu\nsignal", 1))
    res = runner.invoke(lab_cli, ["validate", str(bad)])
    assert res.exit_code == 1
    assert f"{bad}:3: resource: 'gpu' is not one of cpu, memory, disk, network" in res.output


def test_docs_describe_every_lab_and_schema_field() -> None:
    from obslab.labs.catalog import schema

    from obslab.paths import REPO_ROOT

    text = (REPO_ROOT / "docs" / "labs.md").read_text()
    for lab_id, lab in load_catalog().items():
        assert f"### `{lab_id}`" in text
        for ev in lab["evidence"]:  # the documented evidence is the selftested one
            assert ev["query"] in text, (lab_id, ev["name"])
    for field in schema()["properties"]:
        assert f"`{field}`" in text, field
