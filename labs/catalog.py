"""The lab catalog: one YAML file per lab in labs/catalog/, validated against labs/schema/lab.schema.json.

A bad file is reported with the file, the line and the field at fault (``cpu-hog.yaml:12: hints: ...``): YAML
node marks give the line of the node a JSON-schema error points to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "lab.schema.json"


class LabFileError(ValueError):
    """A lab file that does not load or validate: ``str()`` is ``file:line: field: what was expected``."""

    def __init__(self, path: Path | str, line: int | None, field: str, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {field or '(top)'}: {message}")


@dataclass
class Lab:
    """A validated lab (the YAML data, plus where it came from)."""

    data: dict[str, Any]
    path: Path

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def accepted_signals(self) -> list[str]:
        sig = self.data["answer"]["signal"]
        return [sig] if isinstance(sig, str) else list(sig)

    def fault_names(self) -> list[str]:
        return [f.get("name") or f["injector"] for f in self.data["faults"]]


@cache
def schema() -> dict[str, Any]:
    import json

    return dict(json.loads(SCHEMA_PATH.read_text()))


def _to_python(node: yaml.Node) -> Any:
    return yaml.SafeLoader(" ").construct_document(node)


def _node_at(root: yaml.Node, path: Sequence[Any]) -> yaml.Node:
    """The deepest YAML node along ``path`` (mapping keys / sequence indexes) that exists."""
    node = root
    for key in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    node = v
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def _key_node(root: yaml.Node, path: Sequence[Any]) -> yaml.Node | None:
    """The mapping-key node of the last element of ``path`` (its line is where the field is written)."""
    if not path:
        return None
    parent = _node_at(root, path[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if k.value == path[-1]:
                return k
    return None


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def parse_lab(text: str, path: Path | str = "<lab>") -> Lab:
    """Parse and validate one lab file's text; raises LabFileError (file, line, field, expectation)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise LabFileError(
            path, mark.line + 1 if mark else None, "", f"not valid YAML: {e.problem}"
        ) from None
    if root is None:
        raise LabFileError(path, 1, "", "the file is empty")
    data = _to_python(root)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        err = jsonschema.exceptions.best_match(errors) or errors[0]
        p = list(err.absolute_path)
        if err.validator == "required":
            node = _node_at(root, p)
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            raise LabFileError(
                path, node.start_mark.line + 1, _dotted([*p, missing]), "is required but missing"
            )
        if err.validator == "additionalProperties":
            extra = [k for k in (err.instance or {}) if k not in (err.schema.get("properties") or {})]
            key = _key_node(root, [*p, extra[0]]) if extra else None
            line = (key or _node_at(root, p)).start_mark.line + 1
            allowed = ", ".join(sorted(err.schema.get("properties") or {}))
            raise LabFileError(path, line, _dotted([*p, *(extra[:1])]), f"unknown field (allowed: {allowed})")
        node = _key_node(root, p) or _node_at(root, p)
        raise LabFileError(path, node.start_mark.line + 1, _dotted(p), _expectation(err))
    lab = Lab(data, Path(path))
    if isinstance(path, Path) and path.suffix == ".yaml" and path.stem != lab.id:
        key = _key_node(root, ["id"])
        raise LabFileError(
            path, key.start_mark.line + 1 if key else 1, "id", f"must equal the file name {path.stem!r}"
        )
    _check_faults(lab, root)
    return lab


def _expectation(err: jsonschema.ValidationError) -> str:
    v, s = err.validator, err.schema
    if v == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, s['enum']))}"
    if v == "type":
        return f"expected {s['type']}, got {type(err.instance).__name__}"
    if v == "minItems":
        return f"needs at least {s['minItems']} item(s), has {len(err.instance)}"
    if v == "pattern":
        return f"{err.instance!r} does not match {s['pattern']}"
    if v in ("minimum", "maximum"):
        return f"{err.instance!r} must be {'>=' if v == 'minimum' else '<='} {s[v]}"
    if v == "minLength":
        return f"too short (at least {s['minLength']} characters)"
    return err.message


def _check_faults(lab: Lab, root: yaml.Node) -> None:
    """Each fault names a registered injector and its params pass that injector's validation."""
    from obslab.labs.injectors import INJECTORS, InjectorError, load_all

    load_all()
    for i, fault in enumerate(lab.data["faults"]):
        name = fault["injector"]
        if name not in INJECTORS:
            node = _node_at(root, ["faults", i, "injector"])
            known = ", ".join(sorted(INJECTORS))
            raise LabFileError(
                lab.path,
                node.start_mark.line + 1,
                f"faults[{i}].injector",
                f"unknown injector {name!r} (known: {known})",
            )
        try:
            INJECTORS[name].validate(fault.get("params") or {})
        except InjectorError as e:
            field = f"faults[{i}].params" + (f".{e.param}" if e.param else "")
            node = _node_at(root, ["faults", i, "params", *([e.param] if e.param else [])])
            raise LabFileError(lab.path, node.start_mark.line + 1, field, str(e)) from None


def load_lab_file(path: Path) -> Lab:
    try:
        text = path.read_text()
    except OSError as e:
        raise LabFileError(path, None, "", f"cannot read: {e.strerror}") from None
    return parse_lab(text, path)


def load_catalog(directory: Path = CATALOG_DIR) -> dict[str, Lab]:
    """Every lab in ``directory`` by id; the first bad file raises LabFileError."""
    labs: dict[str, Lab] = {}
    for path in sorted(directory.glob("*.yaml")):
        lab = load_lab_file(path)
        labs[lab.id] = lab
    return labs


def cause_options(labs: dict[str, Lab]) -> list[dict[str, str]]:
    """Every cause in the catalog, sorted: the same list for every lab, so the options give nothing away."""
    seen: dict[str, str] = {}
    for lab in labs.values():
        seen.setdefault(lab["answer"]["cause"], lab["answer"]["cause_label"])
    return [{"id": k, "label": v} for k, v in sorted(seen.items(), key=lambda kv: kv[1].lower())]
