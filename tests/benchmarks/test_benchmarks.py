"""The benchmark harness runs end to end (--quick, Gleitzeit only) and its shapes are the ones the issue names.

Timings are printed, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.shapes import chain, fanout, layered

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_table_and_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-peers", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "| scenario | system | tasks |" in out
    for scenario in ("1 chain", "2 fan-out", "3 layered DAG", "4 scaling", "6 orchestration only", "10 map",
                     "5: python/execute latency", "7: floors", "8: target", "9: provider CPU per trivial request"):
        assert scenario in out
    # issue 18's targets: each of the four rows with its commits per task and floor sum
    targets = [ln for ln in out.splitlines() if ln.startswith("| fanout ") or ln.startswith("| chain ")]
    assert len(targets) == 4 and all(ln.count("|") == 10 and "–" not in ln for ln in targets)
    assert "failed" not in out
    [json_file] = tmp_path.glob("*.json")
    [md_file] = tmp_path.glob("*.md")
    data = json.loads(json_file.read_text())
    assert data["machine"]["cores"] >= 1
    systems = {r["system"] for r in data["rows"]}
    assert {"gleitzeit python/sqlite", "gleitzeit python/memory", "gleitzeit no-op/sqlite",
            "gleitzeit no-op/memory"} <= systems
    assert all(r["tasks"] and r["wall_s"] is not None for r in data["rows"])
    assert "JSON-RPC round trip, bare echo child" in data["latencies"]
    sdk = data["sdk_cpu"]  # the SDK's CPU per request beside its floor, measured in the same run
    assert sdk["requests"] == 2000 and sdk["sdk_cpu_ms_per_request"] > 0 and sdk["echo_cpu_ms_per_request"] > 0
    assert sdk["ratio"] == sdk["sdk_cpu_ms_per_request"] / sdk["echo_cpu_ms_per_request"]
    assert "| scenario | system |" in md_file.read_text()
    # scenario 11: `gleitzeit validate` on both formats, and a value via ${…} against via context
    assert "| 11: scale |" in out
    checked = next(s for s in data["scale"] if s["kind"] == "validate")
    assert checked["tasks"] == 2000 and all(checked[f]["cpu_s"] > 0 and checked[f]["peak_rss_mb"] > 0
                                            for f in ("json", "yaml"))
    handed = next(s for s in data["scale"] if s["kind"] == "bigvalue")
    assert handed["ratio"] == handed["ref_s"] / handed["context_s"] and len(handed["walls_s"]["context"]) == 1


def test_a_peer_that_is_not_installed_is_skipped_with_a_note(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import benchmarks.__main__ as harness

    measured = []
    monkeypatch.setattr(harness, "missing", lambda system: [f"{system}-package"])
    monkeypatch.setattr(harness, "measure", lambda item: measured.append(item.system) or {
        "tasks": 21, "walls_s": [0.1], "peak_rss_mb": 1.0, "engine_cpu_s_per_rep": 0.01})
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--quick", "--only", "1"])
    harness.main()
    out = capsys.readouterr().out
    for peer in ("prefect", "dagster", "luigi", "airflow"):
        assert f"note: skipping {peer}: {peer}-package not installed" in out
    assert measured == ["gleitzeit python/sqlite", "gleitzeit python/memory"] and "failed" not in out


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
