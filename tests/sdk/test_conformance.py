"""The conformance checker: good providers pass every case, broken ones fail exactly the right ones."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import anyio
import pytest
import yaml
from rich.console import Console

from gleitzeit_sdk.conformance import CASE_NAMES, CheckResult, check_provider, exit_code, render_results, run_checks

HERE = Path(__file__).parent
REPO = HERE.parent.parent
NODE_DIR = REPO / "examples" / "providers" / "node"
PERL_DIR = REPO / "examples" / "providers" / "perl"
DEMO_SAMPLES = {
    "slow": {"method": "demo/slow", "params": {"seconds": 1.0, "steps": 5}},
    "fast": {"method": "demo/echo", "params": {"text": "hi"}},
}
BROKEN = {
    "banner_on_stdout": {"handshake.silent_before_initialize", "traffic.stdout_only_jsonrpc"},
    "answers_notifications": {"notifications.never_answered"},
    "accepts_any_version": {"handshake.version_mismatch"},
    "ignores_max_in_flight": {"concurrency.overload"},
    "hangs_on_eof": {"shutdown.sequence", "exit.stdin_eof_idle", "exit.stdin_eof_busy", "exit.sigterm"},
    "progress_goes_backwards": {"progress.monotonic"},
    "dies_on_bad_json": {"framing.parse_error", "framing.invalid_utf8", "framing.byte_order_mark",
                         "values.deep_nesting"},
    "executes_null_ids": {"ids.null", "traffic.responses_match_schemas"},  # a result with id null
    "dies_over_small_limit": {"size.oversized_message", "size.one_over_the_limit"},
}


def readme_blocks(language: str) -> list[str]:
    text = (REPO / "sdk" / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[CheckResult]]:
    """Every provider under test, checked concurrently (one checker run each)."""
    manifest = yaml.safe_load((NODE_DIR / "manifest.yaml").read_text())
    runs = {"demo": ([sys.executable, str(HERE / "demo_provider.py")], None, DEMO_SAMPLES)}
    readme_provider = tmp_path_factory.mktemp("readme") / "wordy.py"
    readme_provider.write_text(readme_blocks("python")[0])
    readme_manifest = yaml.safe_load(readme_blocks("yaml")[0])
    runs["readme"] = ([sys.executable, str(readme_provider)], None, readme_manifest["conformance"])
    runs["node"] = ([manifest["command"], *manifest["args"]], str(NODE_DIR / manifest["cwd"]), manifest["conformance"])
    perl = yaml.safe_load((PERL_DIR / "manifest.yaml").read_text())
    runs["perl"] = ([perl["command"], *perl["args"]], str(PERL_DIR), perl["conformance"])
    for name in BROKEN:
        runs[name] = ([sys.executable, str(HERE / "broken_providers" / f"{name}.py")], None, DEMO_SAMPLES)
    out: dict[str, list[CheckResult]] = {}

    async def check(name: str, argv: list[str], cwd: str | None, samples: dict) -> None:
        out[name] = await check_provider(argv, cwd=cwd, samples=samples)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for name, (argv, cwd, samples) in runs.items():
                tg.start_soon(check, name, argv, cwd, samples)

    anyio.run(main, backend="asyncio")
    return out


def failed(results: list[CheckResult]) -> dict[str, str]:
    return {r.name: r.detail for r in results if r.status == "fail"}


def test_there_are_at_least_60_distinct_cases() -> None:
    assert len(CASE_NAMES) >= 60 and len(set(CASE_NAMES)) == len(CASE_NAMES)


@pytest.mark.parametrize("provider", ["demo", "node", "readme", "perl"])
def test_conforming_providers_pass_every_case(results: dict[str, list[CheckResult]], provider: str) -> None:
    assert failed(results[provider]) == {}
    assert [r.name for r in results[provider]] == list(CASE_NAMES)
    assert all(r.status == "pass" for r in results[provider])
    assert exit_code(results[provider]) == 0


@pytest.mark.parametrize("provider", sorted(BROKEN))
def test_broken_providers_fail_exactly_the_right_cases(results: dict[str, list[CheckResult]], provider: str) -> None:
    assert set(failed(results[provider])) == BROKEN[provider], failed(results[provider])
    assert exit_code(results[provider]) == 1


def test_a_hopeless_provider_fails_at_once_with_the_rest_not_run() -> None:
    started = time.monotonic()
    results = run_checks([sys.executable, str(HERE / "broken_providers" / "never_initializes.py")], samples=DEMO_SAMPLES)
    elapsed = time.monotonic() - started
    statuses = {r.name: r.status for r in results}
    assert statuses["handshake.initialize_answered"] == "fail"
    after = list(CASE_NAMES)[list(CASE_NAMES).index("handshake.initialize_answered") + 1:]
    assert {statuses[name] for name in after} == {"not run"}
    assert exit_code(results) == 1
    assert elapsed < 30, f"{elapsed:.1f} s"  # the issue's bound; ~10 s (two 5 s response timeouts)


def test_cases_without_a_sample_are_skipped_not_passed() -> None:
    only = ("concurrency.ping_while_busy", "cancel.one_response", "requests.fast_sample", "requests.ping")
    results = run_checks([sys.executable, str(HERE / "demo_provider.py")], only=only)
    assert {r.name: r.status for r in results} == {
        "concurrency.ping_while_busy": "skip",
        "cancel.one_response": "skip",
        "requests.fast_sample": "skip",
        "requests.ping": "pass",
    }
    assert "needs a 'slow' sample call" in {r.name: r.detail for r in results}["cancel.one_response"]
    assert exit_code(results) == 0


def test_a_missing_executable_fails_cases_instead_of_raising() -> None:
    results = run_checks(["/nonexistent/provider"], only=("requests.ping",))
    assert results[0].status == "fail"
    assert "provider" in results[0].detail


def test_bad_samples_and_case_names_are_refused() -> None:
    with pytest.raises(ValueError, match="sample 'slow': needs a 'method' string"):
        run_checks(["true"], samples={"slow": {"params": {}}})
    with pytest.raises(ValueError, match="unknown kind"):
        run_checks(["true"], samples={"medium": {"method": "a/b"}})
    with pytest.raises(ValueError, match="unknown conformance cases: nope"):
        run_checks(["true"], only=("nope",))


def test_render_results_prints_a_table_and_a_summary() -> None:
    console = Console(record=True, width=200)
    results = [
        CheckResult("requests.ping", True, "ok"),
        CheckResult("cancel.one_response", False, "two responses"),
        CheckResult("progress.monotonic", False, "needs a sample", skipped=True),
    ]
    render_results(results, console)
    text = console.export_text()
    for fragment in ("requests.ping", "PASS", "FAIL", "SKIP", "two responses", "1 passed, 1 failed, 1 skipped"):
        assert fragment in text
