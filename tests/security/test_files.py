"""Files a workflow names or touches: read with the sandbox's identity and view only (issue 14
escape 1), the files beside the workflow and the workspace layout (issue 12 §3), writable
folders as root without chmod 777, private workspaces (issue 12 §7)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .conftest import leaks, run, write


def test_root_only_scripts_in_the_workflow_folder_are_not_read(home: Path, work: Path, canary: str) -> None:
    """A root-only script (0600, and one in a 0700 folder) fails as unreadable: its first line,
    a syntax error, never reaches the stored error or the output."""
    write(work, "root_only.py", f"{canary} is not python\n", mode=0o600)
    write(work, "private/step.py", f"{canary} is not python either\n", mode=0o600)
    (work / "private").chmod(0o700)
    wf = write(work, "wf.yaml", """\
        name: root-only
        tasks:
          - {name: a, method: python/execute, parameters: {file: root_only.py}}
          - {name: b, method: python/execute, parameters: {file: private/step.py}}
        """)
    res = run(home, wf, "--json")
    assert res.code != 0
    tasks = res.json()["tasks"]
    assert all("Permission denied" in tasks[t]["error"] for t in ("a", "b")), tasks
    assert leaks(canary, home, res) == []


def test_file_outside_the_workflow_folder_is_read_as_the_sandbox_user(home: Path, work: Path, canary: str) -> None:
    """`file: /etc/shadow` with `sandbox.read` of its folder, and a root-only file the same way:
    read inside the sandbox as uid 65534, so nothing of either shows up anywhere."""
    shadow_line = Path("/etc/shadow").read_text().splitlines()[0]  # e.g. root:*:19000:0:99999:7:::
    secret_dir = Path(tempfile.mkdtemp(prefix="gz-sec-secret-"))
    try:
        secret_dir.chmod(0o755)
        secret = write(secret_dir, "shadow", f"{canary}:*:19000:0:99999:7:::\n", mode=0o640)
        wf = write(work, "wf.yaml", f"""\
            name: shadow
            tasks:
              - name: etc
                method: python/execute
                sandbox: {{read: [/etc]}}
                parameters: {{file: /etc/shadow}}
              - name: mine
                method: python/execute
                sandbox: {{read: ["{secret_dir}"]}}
                parameters: {{file: "{secret}"}}
            """)
        res = run(home, wf)
        assert res.code != 0
        assert leaks(canary, home, res) == []
        assert leaks(shadow_line, home, res) == []
    finally:
        for path in (secret_dir / "shadow", secret_dir):
            path.unlink() if path.is_file() else path.rmdir()


def test_files_beside_the_workflow_and_relative_writes(home: Path, work: Path) -> None:
    """cwd is the run's workspace; the workflow folder's files appear there read-only under their
    own names, for inline code and `file:` scripts alike; relative writes land in the workspace,
    whose path the summary and --json print."""
    write(work, "sales.csv", "region,amount\nnorth,3\n")
    write(work, "data/sales.csv", "region,amount\nsouth,4\n")
    write(work, "step.py", """\
        import csv
        rows = list(csv.DictReader(open("data/sales.csv"))) + list(csv.DictReader(open("out.csv")))
        try:
            open("sales.csv", "w").write("overwritten")
        except OSError as exc:
            refused = exc.strerror
        result = {"total": sum(int(r["amount"]) for r in rows), "refused": refused}
        """)
    wf = write(work, "wf.yaml", """\
        name: beside
        tasks:
          - name: inline
            method: python/execute
            parameters:
              code: |
                import csv
                rows = list(csv.DictReader(open("sales.csv")))
                with open("out.csv", "w") as fh:
                    fh.write("region,amount\\n" + "".join(f"{r['region']},{r['amount']}\\n" for r in rows))
                result = len(rows)
          - name: script
            method: python/execute
            dependencies: [inline]
            parameters: {file: step.py}
        """)
    res = run(home, wf, "--json")
    assert res.code == 0, res.out + res.err
    out = res.json()
    ws = Path(out["workspace"])
    assert out["tasks"]["script"]["result"]["result"] == {"total": 7, "refused": "Read-only file system"}
    assert ws.parent == home / "workspaces" and ws.name == out["run_id"]  # computable from the run id
    assert (ws / "out.csv").read_text() == "region,amount\nnorth,3\n"
    assert (work / "sales.csv").read_text() == "region,amount\nnorth,3\n"  # the input is untouched
    summary = run(home, wf)
    assert summary.code == 0 and "workspace: " + str(home / "workspaces") in summary.out


def test_sandbox_write_to_a_root_owned_folder_without_chmod(home: Path, work: Path) -> None:
    """As root, `sandbox.write` to an ordinary 0755 root folder works; the files belong to root on
    the host, and no set-uid/set-gid program can be planted there."""
    out = work / "out"
    out.mkdir(mode=0o755)
    wf = write(work, "wf.yaml", """\
        name: write
        sandbox: {write: [out]}
        tasks:
          - name: w
            method: python/execute
            parameters:
              code: |
                import os, shutil
                open("out/report.txt", "w").write("done")
                shutil.copy("/usr/bin/env", "out/env")
                denied = []
                for attempt in (lambda: os.chmod("out/env", 0o4755), lambda: os.chmod("out/env", 0o2755),
                                lambda: os.open("out/suid", os.O_CREAT | os.O_WRONLY, 0o4755)):
                    try:
                        attempt()
                    except PermissionError:
                        denied.append(True)
                result = len(denied)
        """)
    res = run(home, wf, "--json", "--allow-write", str(out))  # the runner allows the folder the workflow asks for
    assert res.code == 0, res.out + res.err
    assert res.json()["tasks"]["w"]["result"]["result"] == 3
    assert (out / "report.txt").read_text() == "done"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for path in out.iterdir():
        st = path.lstat()
        assert st.st_uid == 0 and not st.st_mode & (stat.S_ISUID | stat.S_ISGID), (path, oct(st.st_mode), st.st_uid)


def test_no_world_writable_or_readable_folder_in_the_store(home: Path, work: Path) -> None:
    """Workspaces used to be 0777; now nothing under GLEITZEIT_HOME is open to other users."""
    wf = write(work, "wf.yaml", """\
        name: private
        tasks:
          - {name: t, method: python/execute, parameters: {code: "open('f.txt', 'w').write('x')"}}
        """)
    res = run(home, wf, "--json")
    assert res.code == 0, res.out + res.err
    assert not home.stat().st_mode & 0o077
    ws = Path(res.json()["workspace"])
    for folder in (ws, ws.parent):
        assert not folder.stat().st_mode & 0o077, oct(folder.stat().st_mode)
    open_dirs = [p for p in home.rglob("*") if p.is_dir() and not p.is_symlink() and p.stat().st_mode & 0o002]
    assert open_dirs == []
    assert os.path.isfile(ws / "f.txt")
