"""A small in-memory stand-in for ``obslab.labs.api``, for the console's unit tests ONLY.

The browser test (test_browser.py) drives the real labs API and a real lab.
"""

from __future__ import annotations

import time
from typing import Any


class LabError(Exception):
    http_status = 400


class UnknownLab(LabError):
    http_status = 404


class Conflict(LabError):
    http_status = 409


CATALOG = [
    {
        "id": "cpu-hog",
        "title": "A CPU hog",
        "resource": "cpu",
        "signal": "saturation",
        "difficulty": "easy",
        "duration_seconds": 300,
        "briefing": "Latency went up.",
        "answer_options": {
            "resource": ["cpu", "memory"],
            "signal": ["saturation", "errors"],
            "cause": [{"id": "hog", "label": "a CPU hog"}, {"id": "leak", "label": "a leak"}],
        },
    },
    {
        "id": "mem-leak",
        "title": "A leak",
        "resource": "memory",
        "signal": "saturation",
        "difficulty": "medium",
        "duration_seconds": 300,
        "briefing": "Memory.",
        "answer_options": {
            "resource": ["memory"],
            "signal": ["saturation"],
            "cause": [{"id": "leak", "label": "l"}],
        },
    },
]


class FakeLabs:
    LabError = LabError

    def __init__(self) -> None:
        self.run: dict[str, Any] | None = None
        self.runs: list[dict[str, Any]] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def catalog(self) -> list[dict[str, Any]]:
        return [dict(x) for x in CATALOG]

    def start(self, lab_id: str, duration: int | None = None) -> dict[str, Any]:
        self.calls.append(("start", (lab_id, duration)))
        if lab_id not in {x["id"] for x in CATALOG}:
            raise UnknownLab(lab_id)
        if self.run is not None:
            raise Conflict("a lab is already running")
        now = time.time()
        self.run = {
            "state": "running",
            "lab": lab_id,
            "started_at": now,
            "deadline": now + (duration or 300),
            "hints_used": 0,
            "attempts": 0,
        }
        return dict(self.run)

    def current(self) -> dict[str, Any]:
        return dict(self.run) if self.run else {"state": "idle"}

    def hint(self) -> dict[str, Any]:
        if self.run is None:
            raise Conflict("no lab is running")
        self.run["hints_used"] += 1
        return {"level": self.run["hints_used"], "of": 3, "text": f"hint {self.run['hints_used']}"}

    def answer(self, resource: str, signal: str, cause: str) -> dict[str, Any]:
        self.calls.append(("answer", (resource, signal, cause)))
        if self.run is None:
            raise Conflict("no lab is running")
        self.run["attempts"] += 1
        ok = (resource, signal, cause) == ("cpu", "saturation", "hog")
        if ok:
            self.runs.append({**self.run, "score": 90})
            self.run = None
        return {
            "correct": ok,
            "feedback": "yes" if ok else "no",
            "score": 90 if ok else None,
            "debrief": "debrief text" if ok else None,
        }

    def stop(self) -> dict[str, Any]:
        if self.run is None:
            raise Conflict("no lab is running")
        self.run = None
        return {"state": "idle"}

    def history(self) -> list[dict[str, Any]]:
        return list(self.runs)
