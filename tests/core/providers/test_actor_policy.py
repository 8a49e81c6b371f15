"""The provider actor's protocol rules that need no process: an attempt's deadline
(PROTOCOL.md §2.2 "Timeout precedence"), the protocols a provider serves (§2.1) and the
message limits it announces (§1, §1.1). In-process and fast: the mutation-testing selection
for these parts of gleitzeit_core/providers/actor.py (docs/testing.md); the actor with real
provider processes is tests/core/providers/test_actor.py."""

from __future__ import annotations

import math

import pytest

from gleitzeit_core.providers.actor import (announced_max_assembled, announced_max_bytes, attempt_deadline,
                                            served_protocols)

DESCRIPTOR = {"name": "python/execute", "defaultTimeoutSec": 60, "timeoutParam": "timeout"}
DEFAULT_NOTE = " (python/execute's defaultTimeoutSec; give the task a timeout to allow more)"
MIB = 1 << 20


def test_the_tasks_timeout_comes_first_and_is_sent_as_the_timeout_parameter() -> None:
    params = {"code": "x", "timeout": 5}
    assert attempt_deadline(DESCRIPTOR, "python/execute", 7.5, params) == (7.5, "", {"code": "x", "timeout": 7.5})
    assert params == {"code": "x", "timeout": 5}  # the caller's params are not changed


def test_else_the_timeout_parameter_the_workflow_set() -> None:
    assert attempt_deadline(DESCRIPTOR, "python/execute", None, {"timeout": 3}) == (3.0, "", {"timeout": 3.0})


@pytest.mark.parametrize("unusable", [0, -1, True, math.inf, float("1e999"), math.nan, "5", None])
def test_an_unusable_timeout_parameter_falls_back_to_the_methods_default(unusable: object) -> None:
    timeout, note, params = attempt_deadline(DESCRIPTOR, "python/execute", None, {"timeout": unusable})
    assert (timeout, note, params) == (60.0, DEFAULT_NOTE, {"timeout": 60.0})


def test_else_the_methods_default_with_a_note_saying_where_it_came_from() -> None:
    assert attempt_deadline(DESCRIPTOR, "python/execute", None, {"code": "x"}) == (
        60.0, DEFAULT_NOTE, {"code": "x", "timeout": 60.0})
    tiny = {"defaultTimeoutSec": 0.5}
    assert attempt_deadline(tiny, "m/x", None, {}) == (0.5, " (m/x's defaultTimeoutSec; give the task a timeout "
                                                            "to allow more)", {})


@pytest.mark.parametrize("default", [None, 0, -3, True, math.inf, "60"])
def test_else_no_deadline(default: object) -> None:
    descriptor = {"defaultTimeoutSec": default, "timeoutParam": "timeout"}
    assert attempt_deadline(descriptor, "m/x", None, {"code": "x"}) == (None, "", {"code": "x"})
    assert attempt_deadline(None, "m/x", None, {"timeout": 9}) == (None, "", {"timeout": 9})


def test_a_timeout_parameter_that_is_not_a_name_is_ignored() -> None:
    descriptor = {"defaultTimeoutSec": 10, "timeoutParam": 5}
    assert attempt_deadline(descriptor, "m/x", 2.0, {"5": 1}) == (2.0, "", {"5": 1})
    assert attempt_deadline({"timeoutParam": ["t"]}, "m/x", None, {"t": 4}) == (None, "", {"t": 4})


def test_declared_protocols_are_served_as_declared() -> None:
    info = {"protocols": ["wordy/v2", "python/v1", "wordy/v2"], "methods": [{"name": "other/run"}]}
    assert served_protocols(info) == ["python/v1", "wordy/v2"]


@pytest.mark.parametrize("declared", [None, [], ["ok/v1", 3], "python/v1"])
def test_without_a_usable_protocols_list_each_method_prefix_is_a_v1_protocol(declared: object) -> None:
    info = {"protocols": declared,
            "methods": [{"name": "b/run"}, {"name": "a/x"}, {"name": "a/y/z"}, {"name": "noslash"},
                        {"name": 7}, "not a descriptor", {}]}
    assert served_protocols(info) == ["a/v1", "b/v1"]


def test_no_methods_no_protocols() -> None:
    assert served_protocols({}) == []
    assert served_protocols({"methods": None}) == []


@pytest.mark.parametrize(("limits", "expected"), [
    ({"maxMessageBytes": 4096}, 4096),
    ({"maxMessageBytes": 1024}, 1024),  # the smallest a peer may announce
    ({"maxMessageBytes": 1023}, 16 * MIB),
    ({"maxMessageBytes": True}, 16 * MIB),
    ({"maxMessageBytes": 4096.0}, 16 * MIB),
    ({}, 16 * MIB),
    ("4096", 16 * MIB),
    (None, 16 * MIB),
])
def test_the_message_limit_a_provider_announces_or_the_protocols_default(limits: object, expected: int) -> None:
    assert announced_max_bytes({"limits": limits}) == expected


@pytest.mark.parametrize(("limits", "expected"), [
    ({"maxAssembledBytes": 256 * MIB}, 256 * MIB),
    ({"maxAssembledBytes": 1}, 1),
    ({"maxAssembledBytes": 0}, 0),  # takes no pieces
    ({"maxAssembledBytes": -5}, 0),
    ({"maxAssembledBytes": True}, 0),
    ({"maxAssembledBytes": 2.0}, 0),
    ({"maxMessageBytes": 4096}, 0),
    (None, 0),
])
def test_pieces_only_to_a_provider_that_announced_how_much_it_assembles(limits: object, expected: int) -> None:
    assert announced_max_assembled({"limits": limits}) == expected
