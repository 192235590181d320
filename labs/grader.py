"""Grading a diagnosis: is it right, what to say when it is not (without giving it away), and the score."""

from __future__ import annotations

from dataclasses import dataclass

RESOURCES = ("cpu", "memory", "disk", "network")
SIGNALS = ("utilization", "saturation", "errors")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    matched: int  # how many of the three parts (resource, signal, cause) are right
    feedback: str


def grade(
    expected_resource: str,
    accepted_signals: list[str],
    expected_cause: str,
    resource: str,
    signal: str,
    cause: str,
) -> Verdict:
    """Compare a diagnosis with the lab's answer. Feedback says how close, never which part is wrong."""
    parts = [resource == expected_resource, signal in accepted_signals, cause == expected_cause]
    matched = sum(parts)
    if matched == 3:
        return Verdict(True, 3, "Correct: that is the fault.")
    if matched == 0:
        text = (
            "Not it: none of the three parts matches. Go back to the symptom and walk the USE method "
            "resource by resource (utilization, saturation, errors)."
        )
    elif matched == 1:
        text = (
            "Not yet: one of the three parts matches. Confirm what you see with a second source (a CLI tool)."
        )
    else:
        text = (
            "Close: two of the three parts match. Re-read the evidence for the part you are least sure of, "
            "or take a hint."
        )
    return Verdict(False, matched, text)


def score(hints_used: int, wrong_attempts: int, seconds: float) -> int:
    """100, minus 15 a hint, 10 a wrong answer, 2 every 30 s after the first 2 minutes (at most 30); at least 10."""
    time_penalty = min(30, max(0, int(seconds - 120) // 30) * 2)
    return max(10, 100 - 15 * hints_used - 10 * wrong_attempts - time_penalty)
