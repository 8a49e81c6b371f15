"""`gleitzeit worker --metrics-port`: Prometheus metrics scraped over HTTP from the real
worker process while it runs real attempts (real redis-server, real `gleitzeit run`)."""

from __future__ import annotations

import re
import socket
import subprocess
import textwrap
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.distributed.conftest import Pool, wait_for
from tests.helpers.cli import REPO

CONTRACT = str(REPO / "tests" / "dispatch" / "contract.yaml")
PROTO = {"protocol": "ct/v1"}
#: long enough for a second `gleitzeit run` to start and queue behind it on a loaded machine
HOLD_S = 12


def start_worker(pool: Pool, name: str, *extra: str) -> str:
    """A worker serving the contract provider with one slot; returns its metrics URL."""
    proc = pool.procs[name] = pool.spawn("worker", "--name", name, "--providers", "contract",
                                         "--manifest", CONTRACT, "--concurrency", "1", *extra)
    seen = []
    for line in proc.stderr:
        m = re.search(r"metrics on (http://\S+)", line)
        if m:
            pool.wait_live(name)
            return m.group(1)
        seen.append(line)
    raise AssertionError(f"worker printed no metrics address: {''.join(seen)!r}, exit {proc.wait(10)}")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value, parsed by prometheus-client's own parser."""
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def workflow(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).replace("LOG", str(tmp / "ct.log")).replace("HOLD", str(HOLD_S)))
    return path


def test_a_working_worker_exposes_states_durations_queue_depth_and_restarts(tmp_path: Path, pool: Pool):
    url = start_worker(pool, "metered", "--metrics-port", "0")
    assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
    log = tmp_path / "ct.log"
    slow = workflow(tmp_path, "slow", """
        name: slow
        tasks:
          - name: hold
            protocol: ct/v1
            method: ct/sleep
            params: {log: LOG, name: hold, seconds: HOLD}
    """)
    # a second run while the first holds the worker's one slot: its attempt waits in the queue
    queued = workflow(tmp_path, "queued", """
        name: queued
        tasks:
          - name: quick
            protocol: ct/v1
            method: ct/sleep
            params: {log: LOG, name: quick}
          - name: crash
            protocol: ct/v1
            method: ct/crash
            dependencies: [quick]
            retry: {max_attempts: 2, on_crash: true, base_delay: 0.1}
            params: {log: LOG, name: crash}
    """)
    first = pool.spawn("run", str(slow), "--distributed", "--json")
    wait_for(lambda: log.exists() and "start hold" in log.read_text(), 90, "the slow attempt to start")
    second = pool.spawn("run", str(queued), "--distributed", "--json")

    def busy_and_queued() -> dict | None:
        s = scrape(url)
        return s if value(s, "gleitzeit_queue_depth", **PROTO) == 1 else None
    busy = wait_for(busy_and_queued, 60, "the second run's attempt in the queue")
    assert value(busy, "gleitzeit_worker_attempts_running", **PROTO) == 1
    assert value(busy, "gleitzeit_queue_claimed", **PROTO) == 1
    assert value(busy, "gleitzeit_worker_attempts_total", outcome="completed", **PROTO) is None

    out_first, _ = first.communicate(timeout=120)
    out_second, _ = second.communicate(timeout=120)
    assert first.returncode == 0 and '"status": "completed"' in out_first
    assert second.returncode != 0  # its crash task failed twice

    def settled() -> dict | None:
        s = scrape(url)
        return s if value(s, "gleitzeit_worker_attempts_total", outcome="crashed", **PROTO) == 2 else None
    done = wait_for(settled, 30, "both crashed attempts counted")
    assert value(done, "gleitzeit_worker_attempts_total", outcome="completed", **PROTO) == 2  # hold, quick
    assert value(done, "gleitzeit_worker_attempts_running", **PROTO) == 0
    assert value(done, "gleitzeit_queue_depth", **PROTO) == 0
    assert value(done, "gleitzeit_queue_claimed", **PROTO) == 0
    count = value(done, "gleitzeit_worker_attempt_duration_seconds_count", outcome="completed", **PROTO)
    assert count == 2
    assert value(done, "gleitzeit_worker_attempt_duration_seconds_sum", outcome="completed", **PROTO) >= HOLD_S
    # the 12 s attempt falls in the 30 s bucket, not in the 10 s one
    assert value(done, "gleitzeit_worker_attempt_duration_seconds_bucket", le="10.0", outcome="completed", **PROTO) == 1
    assert value(done, "gleitzeit_worker_attempt_duration_seconds_bucket", le="30.0", outcome="completed", **PROTO) == 2
    # the provider crashed twice; the second attempt needed a new process, the first crash's restart
    assert value(done, "gleitzeit_provider_restarts_total", provider="contract") == 1
    assert log.read_text().count("start crash") == 2


def test_a_taken_metrics_port_is_one_line_before_any_provider_starts(tmp_path: Path, pool: Pool):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = pool.procs["clash"] = pool.spawn("worker", "--name", "clash", "--providers", "contract",
                                                "--manifest", CONTRACT, "--metrics-port", str(port))
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 2, err
    assert f"--metrics-port {port} on 127.0.0.1: Address already in use" in err
    assert "Traceback" not in err and "serving" not in err
