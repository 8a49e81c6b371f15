"""Every example runs from the repo root as written, through the real CLI."""

from __future__ import annotations

import pytest

from tests.helpers.cli import REPO, gz

EXPECTED = {
    "seed_generate_process.yaml": ("completed", 0),
    "seed_calculate.yaml": ("completed", 0),
    "diamond.yaml": ("completed", 0),
    "retry.yaml": ("completed", 0),
    "failing_branch.yaml": ("failed", 1),
    "file_context.yaml": ("completed", 0),
    "polyglot.yaml": ("completed", 0),
    "inputs.yaml": ("completed", 0),
    "cached.yaml": ("completed", 0),
    "cleanup_alert.yaml": ("failed", 1),
    "csv_etl.yaml": ("completed", 0),
}
FLAGS = {  # as their header comments say to run them
    "polyglot.yaml": ["--allow-providers"],
    "inputs.yaml": ["--param", "region=us", "--param", "limit=3", "--env-file", "examples/inputs.env"],
}


def test_every_python_example_is_listed():
    # llm.yaml and mixed.yaml need an Ollama server: tests/provider_ollama runs them against a fake one;
    # mcp.yaml needs MCP servers registered: tests/mcp/test_example.py runs it;
    # llm_triage.yaml: tests/provider_ollama/test_triage_example.py.
    on_disk = {p.name for p in (REPO / "examples").glob("*.yaml")} - {"llm.yaml", "mixed.yaml", "mcp.yaml",
                                                                        "llm_triage.yaml"}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, tmp_path):
    status, code = EXPECTED[name]
    r = gz(tmp_path, "run", f"examples/{name}", *FLAGS.get(name, []), "--json", "--backend", "memory")
    assert r.code == code, r.err
    out = r.json()
    assert out["status"] == status
    if status == "completed":
        assert all(t["status"] == "completed" for t in out["tasks"].values())


def test_seed_example_reads_generated_numbers(tmp_path):
    out = gz(tmp_path, "run", "examples/seed_generate_process.yaml", "--json", "--backend", "memory").json()
    numbers = out["tasks"]["Generate Data"]["result"]["result"]["numbers"]
    processed = out["tasks"]["Process Results"]["result"]["result"]
    assert processed["input_numbers"] == numbers and processed["total"] == sum(numbers)


def test_cleanup_alert_example_cleans_up_and_alerts_after_the_failure(tmp_path):
    out = gz(tmp_path, "run", "examples/cleanup_alert.yaml", "--json", "--backend", "memory").json()
    status = {name: t["status"] for name, t in out["tasks"].items()}
    assert status == {"Extract": "completed", "Load": "failed", "Cleanup": "completed", "Alert": "completed"}


def test_polyglot_passes_node_results_to_python(tmp_path):
    out = gz(tmp_path, "run", "examples/polyglot.yaml", "--allow-providers", "--json", "--backend", "memory").json()
    assert out["tasks"]["Report"]["result"]["result"] == {"shout": "GLEITZEIT RUNS NODE AND PYTHON", "words": 5}


def test_inputs_example_gets_its_values_and_shows_the_token_masked(tmp_path):
    r = gz(tmp_path, "run", "examples/inputs.yaml", *FLAGS["inputs.yaml"], "--json", "--backend", "memory")
    call = r.json()["tasks"]["Call"]["result"]
    assert call["result"] == {"url": "https://api.us.example.com/items?limit=3", "dry_run": True, "token_seen": "***"}
    assert "with token ***" in call["stdout"] and "example-token-not-real" not in r.out + r.err


def test_cached_example_runs_nothing_the_second_time(tmp_path):
    first = gz(tmp_path, "run", "examples/cached.yaml", "--json").json()
    second = gz(tmp_path, "run", "examples/cached.yaml", "--json").json()
    assert first["tasks"]["Report"]["result"]["result"] == "north leads with 165"
    assert {n: t["cached"] for n, t in first["tasks"].items()} == {"Totals": False, "Report": False}
    assert {n: (t["cached"], t["attempts"]) for n, t in second["tasks"].items()} == {
        "Totals": (True, 0), "Report": (True, 0)}
    assert second["tasks"]["Report"]["result"] == first["tasks"]["Report"]["result"]


def test_csv_etl_maps_over_the_folder_in_sorted_order(tmp_path):
    r = gz(tmp_path, "run", "examples/csv_etl.yaml", "--json")  # as its header says, on the default store
    assert r.code == 0, r.err
    out = r.json()
    assert out["tasks"]["Report"]["result"]["result"] == {
        "files": 3, "rows": 6, "revenue": 117.5,
        "by_file": {"data/sales/2026-01.csv": 27.5, "data/sales/2026-02.csv": 45.0,
                    "data/sales/archive/2025-12.csv": 45.0}}
    status = gz(tmp_path, "workflow", "status", out["run_id"], "--expand")
    assert "Extract\tcompleted\t\t" in status.out and "3/3 done" in status.out
    assert status.out.count("\n[") == 3  # one row per file under the map
