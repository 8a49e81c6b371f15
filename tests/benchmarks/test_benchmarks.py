"""The benchmark harness runs end to end (--quick, Gleitzeit only) and its shapes are the ones the issue names.

Timings are printed, never asserted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.plan import QUICK, plan
from benchmarks.shapes import chain, fanout, layered
from benchmarks.targets import COMMIT_FLOOR, RPC_FLOOR, SANDBOX_FLOOR, Measured, Status, summary, summary_table

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_every_target_from_its_measurement_and_writes_results_only_when_asked(tmp_path: Path) -> None:
    before = sorted((ROOT / "benchmarks" / "results").iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-peers", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted((ROOT / "benchmarks" / "results").iterdir()) == before  # --out: nothing into the checkout
    out = done.stdout
    assert "| scenario | system | tasks |" in out
    for scenario in ("1 chain", "2 fan-out", "3 layered DAG", "4 scaling", "6 orchestration only", "10 map",
                     "5: python/execute latency", "7: floors", "8: target", "| issue 18 target |"):
        assert scenario in out
    # scenario 8's detail: each of the four rows with its commits per task and floor sum
    details = [ln for ln in out.splitlines() if re.match(r"\| (fanout|chain) \d+, no-op/", ln)]
    assert len(details) == 4 and all(ln.count("|") == 10 and "–" not in ln for ln in details)
    assert "failed" not in out
    [json_file] = tmp_path.glob("*.json")
    [md_file] = tmp_path.glob("*.md")
    data = json.loads(json_file.read_text())
    # every target of issue 18 measured in this run, beside a floor or baseline from the same run
    targets = data["targets"]
    assert len(targets) == len(summary(Measured())) == 18
    summary_lines = [ln for ln in out.split("| issue 18 target |", 1)[1].splitlines()[2:] if ln.startswith("|")]
    assert len(summary_lines) == len(targets)
    for t, line in zip(targets, summary_lines):
        assert t["measured"] is not None and t["floor"] is not None and t["status"] in ("met", "not met"), t
        assert line.startswith(f"| {t['name']} | {t['measured']:,.3g}"), (line, t)
    assert data["machine"]["cores"] >= 1
    systems = {r["system"] for r in data["rows"]}
    assert {"gleitzeit python/sqlite", "gleitzeit python/memory", "gleitzeit no-op/sqlite",
            "gleitzeit no-op/memory"} <= systems
    assert all(r["tasks"] and r["wall_s"] is not None for r in data["rows"])
    assert "JSON-RPC round trip, bare echo child" in data["latencies"]
    sdk = data["sdk_cpu"]  # the SDK's CPU per request beside its floor, measured in the same run
    assert sdk["requests"] == 2000 and sdk["sdk_cpu_ms_per_request"] > 0 and sdk["echo_cpu_ms_per_request"] > 0
    assert "| scenario | system |" in md_file.read_text() and "| issue 18 target |" in md_file.read_text()
    # scenario 11: `gleitzeit validate` on both formats at two sizes, and a value via ${…} against via context
    checked = sorted(s["tasks"] for s in data["scale"] if s["kind"] == "validate")
    assert checked == [100, 2000]
    handed = next(s for s in data["scale"] if s["kind"] == "bigvalue")
    assert handed["ratio"] == handed["ref_s"] / handed["context_s"] and len(handed["walls_s"]["context"]) == 1
    pool = data["distributed"]  # scenario 12: a real redis-server and 2 `gleitzeit worker` processes
    assert pool["tasks"] == 100 and set(pool["pool_tasks_per_s"]) == {"2"} and len(pool["redis_latency_ms"]) == 20


def fake_measure(item):  # type: ignore[no-untyped-def]
    """A distinct, recognisable figure per measurement, so the summary can be traced back to it."""
    if item.kind == "floors":
        return {RPC_FLOOR: [0.5], COMMIT_FLOOR: [0.02], SANDBOX_FLOOR: [6.25]}
    if item.kind == "sdk":
        return {"requests": 2000, "in_flight": 8, "sdk_cpu_ms_per_request": 0.125, "echo_cpu_ms_per_request": 0.025,
                "ratio": 5.0}
    if item.kind == "distributed":
        return {"kind": "distributed", "tasks": 100, "local_tasks_per_s": 400.0, "pool_tasks_per_s": {"2": 300.0},
                "redis_latency_ms": [2.5, 3.5, 3.0], "local_latency_ms": [0.75]}
    if item.kind == "scale" and "validate" in item.argv:
        n = int(item.argv[-1])
        return {"kind": "validate", "tasks": n, **{fmt: {"wall_s": n / 500, "cpu_s": n / (1000 if fmt == "json" else 400),
                                                         "peak_rss_mb": 40 + n / 10, "bytes": n * 100}
                                                   for fmt in ("json", "yaml")}}
    if item.kind == "scale":
        return {"kind": "bigvalue", "mb": 1, "ref_s": 1.5, "context_s": 2.0, "ratio": 0.75, "walls_s": {}}
    argv = list(item.argv)
    if item.peer:
        return {"tasks": int(argv[5]), "walls_s": [0.5], "peak_rss_mb": 100.0, "versions": {item.peer: "9.9.9"}}
    shape, size = argv[3], int(argv[4])
    tasks = size + 1 if shape in ("fanout", "map") else size
    backend = argv[argv.index("--backend") + 1]
    provider = argv[argv.index("--provider") + 1] if "--provider" in argv else "noop"
    per_task = {"python": 8.0, "noop": 1.0}[provider] * (0.5 if backend == "memory" else 1.0) * (1 + size / 1000)
    return {"tasks": tasks, "walls_s": [per_task * tasks / 1000], "peak_rss_mb": 30 + size / 10,
            "rss_loaded_mb": 20 + size / 10, "engine_cpu_s_per_rep": per_task * tasks / 2000,
            "transactions_per_rep": [tasks],
            "job": {"shape": shape, "size": size, "backend": backend, "provider": provider}}


def test_the_targets_summary_shows_what_was_measured_beside_its_floor(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import benchmarks.__main__ as harness

    monkeypatch.setattr(harness, "measure", fake_measure)
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--quick", "--no-peers"])
    harness.main()
    out = capsys.readouterr().out
    rows = {ln.split(" | ")[0][2:]: ln.split(" | ")[1:] for ln in out.split("| issue 18 target |", 1)[1].splitlines()
            if ln.startswith("| ") and not ln.startswith("|---")}
    # fan-out 50 + join: 1.05 ms per task; floor 0.5 + 1 commit × 0.02
    assert rows["fan-out 10,000, no-op, sqlite: ms per task"][:6] == [
        "1.05", "≤ 0.3 ms", "0.52: RPC via the actor + commits/task × one commit", "2.02×", "51 tasks", "not met"]
    assert rows["chain 1,000, no-op, memory: ms per task"][:3] == ["0.51", "≤ 0.2 ms", "0.5: RPC via the actor + commits/task × one commit"]
    assert rows["sandboxed python/execute through the engine, chain, SQLite: ms per task (p50 of reps)"][:4] == [
        "8.16", "≤ 5 ms", "6.25: one warm execution through the actor, p50 (scenario 5)", "1.31×"]
    assert rows["provider CPU per trivial request, Python SDK: ms"][:5] == [
        "0.125", "≤ 0.15 ms", "0.025: bare stdlib echo child", "5.00×", "2,000 requests"]
    assert rows["provider CPU per trivial request, Python SDK: ms"][5] == "met"
    assert rows["`gleitzeit validate` 100,000 tasks, YAML: CPU s"][:5] == [
        "5", "≤ 3 s", "0.25: the same command on 100 tasks", "20.00×", "2,000 tasks"]
    assert rows["`gleitzeit validate` 100,000 tasks, JSON: peak RSS MB"][:2] == ["240", "≤ 300 MB"]
    # scenario 4 at 100 and 200 tasks (memory: 0.3 and 0.275 ms of engine CPU per task)
    assert rows["run 100,000 tasks, no-op, memory: engine CPU per task ÷ the smallest run's"][:3] == [
        "1.09×", "≤ 1.5×", "0.275: engine CPU ms per task at 100 tasks"]
    assert rows["run 100,000 tasks, no-op, sqlite: engine peak RSS MB"][:3] == [
        "50", "≤ 500 MB", "40: the engine with the workflow loaded, before the run"]
    assert rows["10 MB into python/execute: via `${…}` in code ÷ via `context`"][:2] == ["0.75×", "≤ 1.1×"]
    assert rows["2,000-task no-op fan-out on 2 workers ÷ local providers (Redis store): throughput"][:3] == [
        "0.75×", "≥ 0.8×", "400: local providers' tasks/s"]
    assert rows["per-task dispatch latency through Redis, p50: ms"][:4] == ["3", "≤ 1 ms", "0.75: the local dispatcher, p50", "4.00×"]
    assert all(r[5] in ("met", "not met") for r in rows.values()) and len(rows) == 18


def test_a_target_whose_scenario_did_not_run_says_so() -> None:
    targets = summary(Measured())
    assert {t.status for t in targets} == {Status.NOT_RUN} and all(t.measured is None for t in targets)
    table = summary_table(targets)
    assert table.count("| not run |") == 18 and "| – | ≤ 0.3 ms | – |" in table


def test_a_peer_that_is_not_installed_is_skipped_with_a_note(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import benchmarks.__main__ as harness

    measured = []
    monkeypatch.setattr(harness, "missing", lambda system, python: [f"{system}-package"])
    monkeypatch.setattr(harness, "measure", lambda item: measured.append(item.system) or fake_measure(item))
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--quick", "--only", "1"])
    harness.main()
    out = capsys.readouterr().out
    for peer in ("prefect", "dagster", "luigi", "airflow"):
        assert f"note: skipping {peer}: {peer}-package not installed" in out
    assert measured == ["gleitzeit python/sqlite", "gleitzeit python/memory", "floors"] and "failed" not in out


def test_a_peer_can_run_with_another_interpreter_which_is_asked_what_it_lacks(tmp_path: Path, monkeypatch,
                                                                             capsys) -> None:  # type: ignore[no-untyped-def]
    import benchmarks.__main__ as harness

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    other = str(tmp_path / "venv" / "bin" / "python")
    measured = []
    monkeypatch.setattr(harness, "measure", lambda item: measured.append(item.argv) or fake_measure(item))
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--quick", "--only", "1", "--peer-python", f"dask-threads={other}"])
    harness.main()
    out = capsys.readouterr().out
    assert "note: skipping dask-threads: dask not installed" in out  # the empty venv's answer, whatever this one has
    assert all(argv[0] != other for argv in measured)
    assert {i.argv[0] for i in plan(QUICK, pythons={"luigi": other}) if i.peer == "luigi"} == {other}
    monkeypatch.setattr(harness, "missing", lambda system, python: [])
    harness.main()
    assert "luigi 9.9.9" in capsys.readouterr().out  # a peer's version as the interpreter that ran it reported it
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--peer-python", f"nosuchpeer={other}"])
    with pytest.raises(SystemExit):
        harness.main()


def test_only_8_measures_the_floors_its_targets_are_set_beside(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import benchmarks.__main__ as harness

    measured = []

    def measure(item):  # type: ignore[no-untyped-def]
        measured.append(item.kind)
        if item.kind == "floors":
            return {"JSON-RPC round trip, no-op provider via actor": [0.5], "SQLite WAL commit (sqlite3)": [0.02]}
        return {"tasks": 50, "walls_s": [0.1], "peak_rss_mb": 1.0, "engine_cpu_s_per_rep": 0.01,
                "transactions_per_rep": [100], "job": {"shape": "chain", "backend": "sqlite"}}

    monkeypatch.setattr(harness, "measure", measure)
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--quick", "--no-peers", "--only", "8"])
    harness.main()
    out = capsys.readouterr().out
    assert sorted(set(measured)) == ["floors", "run"]
    assert "| 0.540 | 3.70× |" in out  # floor sum 0.5 + 2 commits/task × 0.02; 2 ms/task ÷ 0.54


def test_chain_reads_previous_result() -> None:
    nodes = chain(5).nodes
    assert [n.reads for n in nodes] == [None, "t0", "t1", "t2", "t3"]


def test_fanout_joins_every_task() -> None:
    shape = fanout(10)
    assert len(shape.nodes) == 11 and shape.nodes[-1].deps == tuple(f"t{i}" for i in range(10))


def test_layered_depends_on_two_or_three_of_previous_layer() -> None:
    shape = layered(1000)
    assert len(shape.nodes) == 1000
    for n in shape.nodes:
        layer = int(n.key[1:].split("_")[0])
        if layer == 0:
            assert n.deps == ()
        else:
            assert 2 <= len(n.deps) <= 3
            assert all(d.startswith(f"l{layer - 1}_") for d in n.deps)


def test_live_view_benchmark_prints_the_ratio() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.live_view", "--tasks", "200", "--reps", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| `gleitzeit run` in a 40×120 pty (live view) |" in done.stdout
    assert "ratio " in done.stdout
