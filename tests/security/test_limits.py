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


def _on_disk(folder: Path) -> int:
    """Bytes the files under `folder` occupy on disk (allocated blocks, links not followed)."""
    return sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_workspace_quota_bounds_what_one_task_leaves_on_disk(home: Path, work: Path) -> None:
    """A task writing 200 MiB into the workspace under a 32 MiB quota (the runner's
    sandbox.max_disk_mb) fails with one clear error and leaves nothing of it on disk; the run's
    other tasks share the workspace as before, and a quota'd task's files reach the disk."""
    wf = write(work, "wf.yaml", """\
        name: hog
        tasks:
          - name: hog
            method: python/execute
            parameters:
              code: |
                import os
                chunk, written = b"h" * (1 << 20), 0
                for i in range(10):  # many files: RLIMIT_FSIZE bounds only one of them
                    try:
                        with open(f"hog-{i}.bin", "wb", buffering=0) as fh:
                            for _ in range(20):
                                fh.write(chunk)
                                written += 1
                    except OSError:
                        pass
                result = written
          - name: keep
            method: python/execute
            parameters:
              code: |
                open("kept.bin", "wb").write(b"k" * (1 << 20))
                result = "kept"
          - name: reader
            method: python/execute
            dependencies: [keep]
            parameters:
              code: |
                import os
                result = os.path.getsize("kept.bin")
        """)
    res = run(home, wf, "--json", GLEITZEIT_SANDBOX_MAX_DISK_MB="32")
    assert res.code == 1, res.out + res.err
    tasks = res.json()["tasks"]
    assert tasks["hog"]["status"] == "failed"
    assert "disk quota of 32 MiB exceeded" in str(tasks["hog"]["error"])
    assert tasks["keep"]["status"] == "completed" and tasks["reader"]["result"]["result"] == 1 << 20
    workspaces = home / "workspaces"
    assert not list(workspaces.rglob("hog-*")), "an execution over its quota leaves the workspace as it was"
    kept = list(workspaces.rglob("kept.bin"))
    assert len(kept) == 1 and kept[0].stat().st_size == 1 << 20
    assert _on_disk(workspaces) < 2 << 20
    assert res.json()["status"] == "failed"  # the run ended normally, its failure recorded


def test_quota_counts_hard_links_and_keeps_sparse_files_sparse(home: Path, work: Path) -> None:
    """One 1 MiB inode under 100 names would be 100 MiB once copied to disk: over a 32 MiB quota.
    A 200 MiB sparse file costs the quota (and the disk) only its data."""
    wf = write(work, "wf.yaml", """\
        name: tricks
        tasks:
          - name: links
            method: python/execute
            parameters:
              code: |
                import os
                open("one.bin", "wb").write(b"l" * (1 << 20))
                for i in range(100):
                    os.link("one.bin", f"link-{i}.bin")
          - name: sparse
            method: python/execute
            parameters:
              code: |
                with open("sparse.bin", "wb") as fh:
                    fh.truncate(200 << 20)
                    fh.seek(100 << 20)
                    fh.write(b"s")
        """)
    res = run(home, wf, "--json", GLEITZEIT_SANDBOX_MAX_DISK_MB="32")
    assert res.code == 1, res.out + res.err
    tasks = res.json()["tasks"]
    assert "disk quota of 32 MiB exceeded" in str(tasks["links"]["error"])
    assert tasks["sparse"]["status"] == "completed", tasks["sparse"]
    workspaces = home / "workspaces"
    assert not list(workspaces.rglob("link-*")) and not list(workspaces.rglob("one.bin"))
    (sparse,) = workspaces.rglob("sparse.bin")
    assert sparse.stat().st_size == 200 << 20
    assert sparse.read_bytes()[100 << 20] == ord("s")
    assert _on_disk(workspaces) < 1 << 20


def test_copying_changes_back_never_follows_a_planted_symlink(home: Path, work: Path) -> None:
    """A task leaves `link -> <a host folder>`; the next replaces it by a folder with a file. The
    copy into the workspace replaces the link; nothing lands in the host folder."""
    target = work / "host-folder"
    target.mkdir()
    wf = write(work, "wf.yaml", f"""\
        name: plant
        tasks:
          - name: plant
            method: python/execute
            parameters:
              code: |
                import os
                os.symlink({str(target)!r}, "link")
          - name: write
            method: python/execute
            dependencies: [plant]
            parameters:
              code: |
                import os
                os.unlink("link")
                os.mkdir("link")
                open("link/owned", "w").write("x")
        """)
    res = run(home, wf, "--json")
    assert res.code == 0, res.out + res.err
    assert not (target / "owned").exists()
    (link,) = (home / "workspaces").rglob("link")
    assert not link.is_symlink() and (link / "owned").read_text() == "x"


def test_a_workflow_cannot_raise_its_own_disk_quota(home: Path, work: Path) -> None:
    wf = write(work, "wf.yaml", """\
        name: greedy
        tasks:
          - name: greedy
            method: python/execute
            sandbox: {disk_mb: 100000}
            parameters: {code: "result = 1"}
        """)
    res = run(home, wf)
    assert res.code != 0
    assert "wf.yaml:" in res.err and "disk_mb: 100000" in res.err and "sandbox.max_disk_mb" in res.err


def test_mountinfo_does_not_show_the_engines_state_paths(work: Path) -> None:
    """A workflow in a folder that holds Gleitzeit's home (e.g. ~/wf.yaml): the task's mountinfo
    lists the folders it sees, not the sandbox roots or quota layers in the state folder."""
    home = work / "gz-home"
    home.mkdir()
    wf = write(work, "wf.yaml", """\
        name: look
        tasks:
          - name: look
            method: python/execute
            parameters: {code: "result = open('/proc/self/mountinfo').read()"}
        """)
    res = run(home, wf, "--json")
    assert res.code == 0, res.out + res.err
    mountinfo = res.json()["tasks"]["look"]["result"]["result"]
    assert "python-provider" not in mountinfo, mountinfo
    assert "upperdir=upper" in mountinfo  # the workspace's overlay, its layers named relatively
