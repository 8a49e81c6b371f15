"""The provider actor's failure rules that need no process: how an attempt that ended without a
result is classified (its failure kind, whether it may be retried, what the task's error says),
how a provider's error response becomes the task's error, the crash budget (a manifest's
``restart:``) and the in-flight limit. In-process and fast: the mutation-testing selection
`actor_failures` (docs/testing.md); the same rules with real provider processes are
tests/core/providers/test_actor.py."""

from __future__ import annotations

import json

import pytest

from gleitzeit_core.errors import ProviderError
from gleitzeit_core.providers.actor import CrashBudget, attempt_failure, in_flight_limit, task_error
from gleitzeit_core.providers.connection import ConnectionClosed, RequestNotSent, RequestTooLarge, ResponseRejected
from gleitzeit_sdk import codes
from gleitzeit_sdk.codes import FailureKind
from gleitzeit_sdk.errors import RpcError


def wire(code: int) -> int:
    """The code as it arrives: decoded from the provider's JSON, another object than the constant."""
    return json.loads(json.dumps(code))


def seen(err: ProviderError) -> tuple[str, FailureKind, bool, int | None]:
    return err.message, err.kind, err.retryable, err.code


def failure(exc: BaseException | None, stopped: str | None = None) -> ProviderError:
    return attempt_failure("p", "p/run", exc, stopped=stopped, exit_status="exit code 3; last stderr: boom")


# -- an attempt that ended without a result ---------------------------------------------------

def test_a_request_over_the_providers_limit_is_too_large_and_never_retried() -> None:
    assert seen(failure(RequestTooLarge(2000, 1000))) == (
        "the request to p/run is 2000 bytes, over provider 'p''s limit of 1000 bytes (maxMessageBytes); pass "
        "large data by reference instead, e.g. as a file in the workspace whose path is a parameter",
        FailureKind.TOO_LARGE, False, None)


def test_a_request_that_cannot_be_sent_is_invalid_params_and_never_retried() -> None:
    assert seen(failure(RequestNotSent("params are not JSON"))) == (
        "cannot send p/run: params are not JSON", FailureKind.INVALID_PARAMS, False, None)


def test_an_unusable_response_is_invalid_response_and_never_retried() -> None:
    assert seen(failure(ResponseRejected("a string over maxMessageBytes"))) == (
        "provider 'p' sent an unusable response to p/run: a string over maxMessageBytes",
        FailureKind.INVALID_RESPONSE, False, None)


def test_a_cancel_the_host_did_not_ask_for_is_retried() -> None:
    for stopped in (None, "", "killed"):  # the provider's answer wins over what the host did
        assert seen(failure(RpcError(wire(codes.CANCELLED), "cancelled"), stopped)) == (
            "provider 'p' cancelled p/run without being asked", FailureKind.CANCELLED_BY_PROVIDER, True, None)


def test_an_error_response_is_the_tasks_error_even_when_the_host_stopped_the_provider() -> None:
    err = failure(RpcError(wire(codes.TASK_FAILED), "bad", {"type": "ValueError", "retryable": False}), "killed")
    assert seen(err) == ("ValueError: bad", FailureKind.TASK_FAILED, False, codes.TASK_FAILED)
    for code, kind in ((codes.OVERLOADED, FailureKind.OVERLOADED), (codes.INVALID_PARAMS, FailureKind.INVALID_PARAMS),
                       (-32000, FailureKind.PROVIDER_ERROR)):  # codes either side of CANCELLED's
        assert failure(RpcError(wire(code), "no")).kind is kind


def test_a_provider_that_went_away_on_its_own_crashed_and_the_error_says_how_it_ended() -> None:
    assert seen(failure(ConnectionClosed("EOF"))) == (
        "provider 'p' crashed during p/run (EOF); exit code 3; last stderr: boom", FailureKind.CRASHED, True, None)
    assert failure(None).message == "provider 'p' crashed during p/run (connection lost); exit code 3; last stderr: boom"


def test_a_provider_the_host_stopped_says_why_instead_of_how_it_exited() -> None:
    why = "provider 'p' was killed because it did not answer a cancelled request within 5 s"
    assert seen(failure(ConnectionClosed("EOF"), why)) == (
        f"{why}; p/run was still running on it", FailureKind.CRASHED, True, None)
    assert seen(failure(ConnectionClosed("EOF"), "")) == (
        "provider 'p' was stopped; p/run was still running on it", FailureKind.CRASHED, True, None)


# -- a provider's error response ---------------------------------------------------------------

def test_a_task_failure_leads_with_its_type_and_keeps_retryable_and_details() -> None:
    data = {"type": "ValueError", "message": "x must be positive", "retryable": False, "details": {"x": -1}}
    err = task_error("p", RpcError(codes.TASK_FAILED, "task failed", data))
    assert seen(err) == ("ValueError: x must be positive", FailureKind.TASK_FAILED, False, codes.TASK_FAILED)
    assert err.details == {"x": -1}


def test_a_task_failure_without_data_is_a_retryable_taskfailed_with_the_error_message() -> None:
    for data in (None, "not a mapping", {}, {"type": "", "message": ""}):
        err = task_error("p", RpcError(codes.TASK_FAILED, "it broke", data))
        assert seen(err) == ("TaskFailed: it broke", FailureKind.TASK_FAILED, True, codes.TASK_FAILED)
        assert err.details is None


def test_a_task_failure_message_that_names_its_type_is_not_prefixed_twice() -> None:
    err = task_error("p", RpcError(codes.TASK_FAILED, "x", {"type": "KeyError", "message": "KeyError: 'a'"}))
    assert err.message == "KeyError: 'a'"
    assert task_error("p", RpcError(codes.TASK_FAILED, "x", {"retryable": 0})).retryable is False


def test_overloaded_is_retried() -> None:
    assert seen(task_error("p", RpcError(wire(codes.OVERLOADED), "busy", {"retryable": False}))) == (
        "provider 'p' is overloaded", FailureKind.OVERLOADED, True, codes.OVERLOADED)


@pytest.mark.parametrize("code, label", [(codes.INVALID_PARAMS, "invalid params"),
                                         (codes.METHOD_NOT_FOUND, "method not found"),
                                         (codes.INVALID_REQUEST, "invalid request")])
def test_a_refused_request_is_invalid_params_never_retried_with_its_detail(code: int, label: str) -> None:
    def message(data: object) -> str:
        err = task_error("p", RpcError(code, "refused", data))
        assert (err.kind, err.retryable, err.code) == (FailureKind.INVALID_PARAMS, False, code)
        return err.message

    assert message({"message": "x: expected integer", "retryable": True}) == f"{label}: refused (x: expected integer)"
    assert message("x: expected integer") == f"{label}: refused (x: expected integer)"  # data that is only text
    assert message({"message": "refused"}) == f"{label}: refused"  # the detail is already in the message
    assert message(None) == message({}) == message({"other": 1}) == message("") == f"{label}: refused"


def test_any_other_error_is_a_provider_error_retried_unless_it_says_otherwise() -> None:
    for code in (-32000, -32804, -40000, 1):  # either side of the protocol's own codes
        assert seen(task_error("p", RpcError(code, "disk full"))) == (
            f"provider error {code}: disk full", FailureKind.PROVIDER_ERROR, True, code)
    assert task_error("p", RpcError(-32000, "disk full", {"retryable": False})).retryable is False
    assert task_error("p", RpcError(-32000, "disk full", "text")).retryable is True


# -- the crash budget and the in-flight limit --------------------------------------------------

def test_the_crash_that_reaches_the_limit_within_the_window_spends_the_budget() -> None:
    budget = CrashBudget(max_restarts=5, window=180.0)
    assert [budget.record(t) for t in (0.0, 10.0, 20.0, 30.0)] == [None] * 4
    assert budget.record(40.0) == "crashed 5 times within 180 s"
    assert budget.record(41.0) == "crashed 6 times within 180 s"  # and it stays spent
    assert CrashBudget(max_restarts=1, window=0.5).record(7.0) == "crashed 1 times within 0.5 s"
    large = CrashBudget(max_restarts=300, window=1e6)
    assert [large.record(float(t)) for t in range(300)][-2:] == [None, "crashed 300 times within 1e+06 s"]


def test_crashes_older_than_the_window_no_longer_count() -> None:
    budget = CrashBudget(max_restarts=3, window=10.0)
    assert [budget.record(t) for t in (0.0, 5.0, 15.5, 20.0)] == [None] * 4  # 0 and 5 aged out by 20
    assert budget.record(25.5) == "crashed 3 times within 10 s"  # 15.5, 20 and 25.5
    edge = CrashBudget(max_restarts=3, window=10.0)
    assert [edge.record(t) for t in (0.0, 5.0, 10.0)] == [None, None, "crashed 3 times within 10 s"]  # exactly 10 s counts


def test_the_in_flight_limit_is_the_providers_lowered_by_the_manifest_and_at_least_one() -> None:
    def announced(n: object) -> dict:
        return {"capabilities": {"concurrency": {"maxInFlight": n}}}

    assert in_flight_limit({}, None) == in_flight_limit(announced(None), None) == 1
    assert in_flight_limit(announced(4), None) == 4
    assert in_flight_limit(announced(4), 2) == 2
    assert in_flight_limit(announced(4), 8) == 4  # a manifest cannot raise what the provider can take
    assert in_flight_limit({}, 3) == 1
    assert in_flight_limit(announced(0), None) == in_flight_limit(announced(0.5), None) == 1
    assert in_flight_limit(announced(2.9), None) == 2


def test_the_providers_state_is_named_by_keyword() -> None:
    with pytest.raises(TypeError):  # `stopped` and `exit_status` are both text: a positional call could swap them
        attempt_failure("p", "p/run", None, None, "exit code 3")  # type: ignore[misc]
