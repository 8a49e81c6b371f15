"""``trigger:`` rules: whether a task runs, given how its dependencies ended. Pure.

Four rules (Airflow's dozen are a known source of confusion; docs/conditions.md):
``all_success`` (default), ``all_done`` (cleanup), ``one_failed`` (alerting) and
``none_failed`` (the join after a branch: at least one dependency completed and
none failed). A task is decided once all of its dependencies are final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Trigger(str, Enum):
    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    ONE_FAILED = "one_failed"
    NONE_FAILED = "none_failed"


class Outcome(Enum):
    """How a dependency ended, as the rules see it."""

    COMPLETED = "completed"
    FAILED = "failed"  # failed or cancelled, or skipped because something upstream failed
    SKIPPED = "skipped"  # skipped by a condition, or by a rule, with no failure upstream


@dataclass(frozen=True)
class Decision:
    run: bool
    failed_upstream: bool = False  # a skip that carries an upstream failure downstream
    blocker: int | None = None  # index of the dependency that decided a skip
    reason: str | None = None  # why it is skipped when no single dependency says it


def decide(trigger: Trigger, outcomes: Sequence[Outcome]) -> Decision:
    """The rule applied to the dependencies' outcomes (in dependency order)."""
    failed = next((i for i, o in enumerate(outcomes) if o is Outcome.FAILED), None)
    if trigger is Trigger.ALL_DONE:
        return Decision(run=True)
    if trigger is Trigger.ONE_FAILED:
        return Decision(run=True) if failed is not None else Decision(run=False, reason="no dependency failed")
    if failed is not None:
        return Decision(run=False, failed_upstream=True, blocker=failed)
    if trigger is Trigger.NONE_FAILED:
        if any(o is Outcome.COMPLETED for o in outcomes):
            return Decision(run=True)
        return Decision(run=False, reason="every dependency was skipped")
    skipped = next((i for i, o in enumerate(outcomes) if o is not Outcome.COMPLETED), None)
    return Decision(run=True) if skipped is None else Decision(run=False, blocker=skipped)
