"""The dashboard over a Redis worker pool: a run submitted with --distributed, executed by
a `gleitzeit worker` process, watched from a dashboard started in yet another process."""

from __future__ import annotations

from pathlib import Path

from tests.distributed.conftest import Pool, pool, pool_factory  # noqa: F401, F811  (fixtures)
from tests.ui.conftest import WAIT_S, gated, start_dashboard, wait_for


def test_dashboard_follows_a_pool_run_and_lists_its_workers(tmp_path: Path, pool: Pool) -> None:
    pool.start("py-a", "python")
    pool.wait_live("py-a")
    tmp_path.chmod(0o755)  # the sandboxed task (another uid) reads the gate file here
    wf, gate = gated(tmp_path, "pooled")
    ui = start_dashboard(pool.home, pool.env)
    proc = pool.spawn("run", str(wf), "--distributed", "--json")
    try:
        run_id = wait_for(lambda: [r["run_id"] for r in ui.get_json("/api/runs") if r["status"] == "running"],
                          WAIT_S, what="the pooled run")[0]
        states = lambda: {t["key"]: t["status"] for t in ui.get_json(f"/api/runs/{run_id}/tasks")}  # noqa: E731
        wait_for(lambda: states()["Wait"] == "running", WAIT_S, what="Wait to run on the worker")
        busy = lambda: [(w["name"], w["protocols"]) for w in ui.get_json("/api/workers") if w["running"]]  # noqa: E731
        # the worker's running count reaches the registry with its next heartbeat
        assert wait_for(busy, WAIT_S, what="the worker to report its attempt") == [("py-a", ["python/v1"])]
        assert 'data-worker="py-a"' in ui.request("/fragments/providers").text
        gate.write_text("open")
        assert proc.wait(WAIT_S) == 0
        doc = ui.get_json(f"/api/runs/{run_id}")
        assert doc["status"] == "completed" and doc["edges"] == [["Wait", "After"]]
        assert {t["key"]: t["result"]["result"] for t in doc["tasks"]} == {"Wait": "opened", "After": 2}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ui.stop()
