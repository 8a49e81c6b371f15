"""Resource bounds that are bounds (issue 14 escape 8): the RAM-backed /tmp and /dev/shm are
sized together by the task's memory limit, not each by it."""

from __future__ import annotations

from pathlib import Path

from .conftest import run, write


def test_tmp_and_shm_together_hold_at_most_memory_mb(home: Path, work: Path) -> None:
    wf = write(work, "wf.yaml", """\
        name: fill
        sandbox: {memory_mb: 96}
        tasks:
          - name: fill
            method: python/execute
            parameters:
              code: |
                def fill(folder):
                    chunk, written = b"x" * (1 << 20), 0
                    try:
                        with open(folder + "/fill", "wb", buffering=0) as fh:
                            while written < 1024:
                                fh.write(chunk)
                                written += 1
                    except OSError:
                        pass
                    return written
                result = {"tmp": fill("/tmp"), "shm": fill("/dev/shm")}
        """)
    res = run(home, wf, "--json")
    assert res.code == 0, res.out + res.err
    filled = res.json()["tasks"]["fill"]["result"]["result"]
    assert filled["tmp"] > 0 and filled["shm"] > 0
    assert filled["tmp"] + filled["shm"] <= 96, filled
