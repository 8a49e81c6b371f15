"""Conformance checker: runs the protocol-v1 cases (``checks.CASES``) against any provider executable.

    results = run_checks(["node", "provider.js"], samples={"slow": {...}, "fast": {...}})
    render_results(results)          # a rich table
    sys.exit(exit_code(results))     # 1 if any case failed (skipped ones do not fail)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from gleitzeit_sdk import checks

CASE_TIMEOUT = 90.0  # per case, above the longest wait a case itself allows
CASE_NAMES = tuple(name for name, _ in checks.CASES)
#: Cases every other case depends on: when one fails, the rest are reported as not run at
#: once (a provider that cannot even be initialized fails the whole check in seconds).
GATES = ("handshake.initialize_answered", "requests.ping")


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""
    skipped: bool = False
    seconds: float = 0.0
    not_run: bool = False  # after a failed gate case; counts as a failure

    @property
    def status(self) -> str:
        if self.not_run:
            return "not run"
        return "skip" if self.skipped else "pass" if self.passed else "fail"


async def check_provider(
    argv: list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    samples: Mapping[str, Any] | None = None,
    only: tuple[str, ...] | None = None,
) -> list[CheckResult]:
    """Run the cases (all, or those named in ``only``) in order; never raises for a provider's fault.

    ``samples``: ``{"slow": {"method", "params"}, "fast": {...}}`` -- a slow call
    (runs for a few seconds and reports progress) and a quick call that succeeds.
    Cases needing one that is missing are reported as skipped.
    """
    parsed = checks.parse_samples(samples)
    unknown = set(only or ()) - set(CASE_NAMES)
    if unknown:
        raise ValueError(f"unknown conformance cases: {', '.join(sorted(unknown))}")
    target = checks.Target(list(argv), env, cwd, parsed)
    results: list[CheckResult] = []
    hopeless = ""
    try:
        for name, case in checks.CASES:
            if only is not None and name not in only:
                continue
            if hopeless:
                results.append(CheckResult(name, False, f"not run: {hopeless}", not_run=True))
                continue
            results.append(await _run_case(name, case, target))
            if name in GATES and results[-1].status == "fail":
                hopeless = f"{name} failed ({results[-1].detail})"
    finally:
        with anyio.CancelScope(shield=True):
            await target.aclose()
    return results


async def _run_case(name: str, case: checks.Check, target: checks.Target) -> CheckResult:
    started = time.monotonic()

    def result(passed: bool, detail: str, skipped: bool = False) -> CheckResult:
        return CheckResult(name, passed, detail, skipped, time.monotonic() - started)

    try:
        with anyio.fail_after(CASE_TIMEOUT):
            return result(True, await case(target))
    except checks.Skipped as exc:
        return result(False, str(exc), skipped=True)
    except checks.Failed as exc:
        return result(False, str(exc))
    except TimeoutError:
        return result(False, f"no verdict within {CASE_TIMEOUT:g} s")
    except anyio.EndOfStream:
        return result(False, "the provider closed stdout (exited?)")
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        return result(False, f"could not talk to the provider: {type(exc).__name__}: {exc}")


def run_checks(
    argv: list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    samples: Mapping[str, Any] | None = None,
    only: tuple[str, ...] | None = None,
) -> list[CheckResult]:
    """Synchronous ``check_provider`` (starts its own event loop; for the CLI)."""
    run = functools.partial(check_provider, argv, env, cwd, samples, only)
    return anyio.run(run, backend="asyncio")


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.status in ("fail", "not run") for r in results) else 0


_STYLE = {"pass": "[green]PASS[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]SKIP[/]", "not run": "[red]NOT RUN[/]"}


def render_results(results: list[CheckResult], console: Console | None = None, title: str = "Provider conformance") -> None:
    """Print the table (case, result, detail) and a one-line summary."""
    console = console or Console()
    table = Table(title=title, show_lines=False)
    table.add_column("Case", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Detail", overflow="fold")
    for r in results:
        table.add_row(r.name, _STYLE[r.status], r.detail)
    console.print(table)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip", "not run")}
    console.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
                  + (f", {counts['not run']} not run" if counts["not run"] else ""))
