"""What an untrusted workflow file may grant itself: only what the person running it allows.

Every test runs the real `gleitzeit` as root on a hostile workflow and judges by host
effects: a canary secret that must not appear in anything printed or stored, a marker
file a hostile provider command would write, and — as the positive control that shows
the canary would be caught — the same workflow leaking once the runner allows it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.cli import Result, gz
from tests.provider_ollama.fake_ollama import FakeOllama

from .conftest import leaks, write


@dataclass(frozen=True)
class Secret:
    """One canary string in two files outside every workflow folder."""

    secret: str
    root_only: Path  # 0600 root:root in a 0700 folder
    world_readable: Path  # 0644 in a 0755 folder

    @property
    def folder(self) -> Path:
        return self.world_readable.parent


@pytest.fixture
def secret(canary: str) -> Iterator[Secret]:
    private = Path(tempfile.mkdtemp(prefix="gz-canary-private-"))
    public = Path(tempfile.mkdtemp(prefix="gz-canary-public-"))
    private.chmod(0o700)
    public.chmod(0o755)
    try:
        yield Secret(canary, write(private, "secret.txt", f"{canary}\n", mode=0o600),
                     write(public, "secret.txt", f"{canary}\n"))
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(public, ignore_errors=True)


def gleitzeit(home: Path, work: Path, *args: str, **env: str) -> Result:
    return gz(home, *args, cwd=work, timeout=120, GLEITZEIT_PERSISTENCE_BACKEND="sqlite", **env)


def said(r: Result) -> str:
    """Everything the command printed (validate reports on stdout, run on stderr)."""
    return r.out + r.err


def stored_runs(home: Path, work: Path) -> list:
    return gleitzeit(home, work, "workflow", "list", "--json").json()


def reader(path: Path) -> str:
    return f"result = open({str(path)!r}).read()"


# -- sandbox: blocks -------------------------------------------------------------------

def test_sandbox_read_of_the_whole_host_is_refused_unless_the_runner_allows_it(home, work, secret):
    wf = write(work, "wf.yaml", f"""\
        name: wide open
        sandbox: {{read: ['/']}}
        tasks:
          - name: steal
            method: python/execute
            parameters: {{code: "{reader(secret.world_readable)}"}}
        """)
    refused = gleitzeit(home, work, "run", str(wf))
    assert refused.code == 2
    assert f"{wf}:2:18: the workflow sandbox: read path '/' is not in a folder you allow" in said(refused)
    assert "--allow-read /" in said(refused) and "Traceback" not in said(refused)
    assert leaks(secret.secret, home, refused) == [] and stored_runs(home, work) == []

    # the runner allows exactly the canary's folder: now the same read works (the check above is the only wall)
    allowed = write(work, "ok.yaml", f"""\
        name: allowed
        sandbox: {{read: ['{secret.folder}']}}
        tasks:
          - name: read
            method: python/execute
            parameters: {{code: "{reader(secret.world_readable)}"}}
        """)
    assert gleitzeit(home, work, "validate", str(allowed)).code == 2  # still refused without the flag
    ran = gleitzeit(home, work, "run", str(allowed), "--allow-read", str(secret.folder), "--json")
    assert ran.code == 0, ran.err
    assert ran.json()["tasks"]["read"]["result"]["result"] == f"{secret.secret}\n"


def test_a_symlink_in_the_workflow_folder_does_not_widen_read(home, work, secret):
    (work / "data").symlink_to("/")
    wf = write(work, "wf.yaml", f"""\
        name: link
        tasks:
          - name: steal
            method: python/execute
            sandbox: {{read: [data]}}
            parameters: {{code: "{reader(secret.world_readable)}"}}
        """)
    r = gleitzeit(home, work, "run", str(wf))
    assert r.code == 2 and f"{wf}:5:22: task 'steal' sandbox: read path '/' is not in a folder you allow" in said(r)
    assert leaks(secret.secret, home, r) == []


def test_a_previous_tasks_output_can_never_become_the_policy(home, work, secret):
    wf = write(work, "wf.yaml", f"""\
        name: policy from data
        tasks:
          - name: gen
            method: python/execute
            parameters:
              code: "result = {{'read': ['/'], 'network': True, 'memory_mb': 1048576}}"
          - name: use
            method: python/execute
            dependencies: [gen]
            parameters:
              code: "{reader(secret.world_readable)}"
              sandbox: "${{gen.result.result}}"
          - name: wide
            method: python/execute
            sandbox: {{read: ["${{gen.result.result.read.0}}"]}}
            dependencies: [gen]
            parameters: {{code: "{reader(secret.world_readable)}"}}
        """)
    r = gleitzeit(home, work, "run", str(wf))
    assert r.code == 2, r.err
    lines = said(r)
    assert f"{wf}:12:16: task 'use' parameters sandbox: the sandbox is policy, never data: it cannot come " \
           "from a ${…} reference; write the value itself" in lines
    assert f"{wf}:15:22: task 'wide' sandbox: the sandbox is policy, never data: it cannot come from a ${{…}} " \
           "reference; write the value itself" in lines
    assert leaks(secret.secret, home, r) == [] and stored_runs(home, work) == []  # nothing ran, nothing stored


def test_network_memory_and_write_need_the_runners_allowance(home, work):
    out = work / "out"
    out.mkdir()
    out.chmod(0o777)  # the sandbox writes as uid 65534
    wf = write(work, "wf.yaml", f"""\
        name: asks for a lot
        sandbox: {{network: true, memory_mb: 1048576, write: ['{out}']}}
        tasks:
          - name: drop
            method: python/execute
            parameters: {{code: "open('{out}/dropped.txt', 'w').write('x')"}}
        """)
    r = gleitzeit(home, work, "validate", str(wf))
    assert r.code == 2
    assert f"{wf}:2:20: the workflow sandbox: 'network: true' gives the code this machine's network; refused " \
           "unless you allow it: run with --allow-network (or set sandbox.allow_network: true in the config)" in said(r)
    assert f"{wf}:2:37: the workflow sandbox: 'memory_mb: 1048576' is above the 4096 MiB you allow; ask for " \
           "less, or raise the cap: --max-memory-mb 1048576 (or sandbox.max_memory_mb in the config)" in said(r)
    assert f"--allow-write {out}" in said(r)
    assert gleitzeit(home, work, "run", str(wf)).code == 2 and not (out / "dropped.txt").exists()

    # each allowance as the error said: by flag, and by the config file
    flags = ("--allow-network", "--max-memory-mb", "1048576", "--allow-write", str(out))
    assert gleitzeit(home, work, "validate", str(wf), *flags).code == 0
    (home / "config.yaml").write_text(json.dumps({"sandbox": {"allow_network": True, "max_memory_mb": 1048576,
                                                              "allow_write": [str(out)]}}))
    ran = gleitzeit(home, work, "run", str(wf), "--json")
    assert ran.code == 0, ran.err
    assert (out / "dropped.txt").read_text() == "x"


# -- providers: in a workflow ------------------------------------------------------------

def _hostile_manifest(folder: Path, marker: Path, *, name: str = "evil", protocol: str = "evil/v1") -> Path:
    """A manifest whose command writes ``marker`` (as whoever starts it) before doing anything else."""
    return write(folder, f"{name}.yaml", f"""\
        name: {name}
        command: /bin/sh
        args: ["-c", "echo pwned > {marker}; exec sleep 30"]
        protocols: [{protocol}]
        """)


def test_providers_in_a_workflow_are_refused_and_validate_never_starts_them(home, work):
    marker = work / "MARKER"
    _hostile_manifest(work, marker)
    wf = write(work, "wf.yaml", """\
        name: brings a provider
        providers: [evil.yaml]
        tasks:
          - {name: a, method: evil/run}
        """)
    for command in ("validate", "run"):
        r = gleitzeit(home, work, command, str(wf))
        assert r.code == 2
        assert f"{wf}:2:1: the workflow: 'providers' starts programs the workflow file names; refused unless " \
               "you allow it: run with --allow-providers" in said(r)
        assert not marker.exists()

    # opted in: validate reads the manifest and matches protocols, but still starts nothing
    r = gleitzeit(home, work, "validate", str(wf), "--allow-providers", "--json")
    assert r.code == 0, r.err
    assert r.json()["plan"]["providers"]["evil"]["started"] is False
    assert not marker.exists()


def test_a_workflow_cannot_replace_a_builtin_provider(home, work):
    marker = work / "MARKER"
    _hostile_manifest(work, marker, name="python", protocol="python/v1")
    wf = write(work, "wf.yaml", """\
        name: replaces python
        providers: [python.yaml]
        tasks:
          - {name: a, method: python/execute, parameters: {code: "result = 1"}}
        """)
    for command in ("validate", "run"):
        r = gleitzeit(home, work, command, str(wf), "--allow-providers")
        assert r.code == 2
        assert f"{work / 'python.yaml'}: provider 'python' from the workflow would take the name 'python' of " \
               "provider 'python'" in said(r) and "a workflow cannot replace a built-in or registered provider" in said(r)
        assert not marker.exists()
    _hostile_manifest(work, marker, name="python2", protocol="python/v1")
    wf.write_text(wf.read_text().replace("python.yaml", "python2.yaml"))
    r = gleitzeit(home, work, "run", str(wf), "--allow-providers")
    assert r.code == 2 and "would take the protocol 'python/v1' of provider 'python'" in said(r)
    assert not marker.exists()


def test_manifest_paths_outside_the_workflow_folder_are_refused_before_reading(home, work, secret):
    (work / "inside.yaml").symlink_to(secret.root_only)
    hops = "../" * 12
    wf = write(work, "wf.yaml", f"""\
        name: reads files
        providers: ['{hops}{str(secret.root_only).lstrip("/")}', '{secret.world_readable}', inside.yaml,
                    '{hops}etc/shadow']
        tasks:
          - {{name: a, method: evil/run}}
        """)
    for flags in ((), ("--allow-providers",)):
        r = gleitzeit(home, work, "validate", str(wf), *flags)
        assert r.code == 2
        outside = [line for line in said(r).splitlines() if "is outside the workflow folder" in line]
        assert len(outside) == 4 and all(line.startswith(f"{wf}:") for line in outside), r.err
        assert leaks(secret.secret, home, r) == []
        assert "root:" not in said(r)  # nothing of /etc/shadow either


# -- files an LLM task names ---------------------------------------------------------------

def test_llm_file_paths_are_read_as_the_sandbox_would(home, work, secret):
    (work / "notes.txt").write_text("NOTES-IN-THE-FOLDER\n")
    private = work / "private.txt"
    private.write_text(f"{secret.secret}\n")
    private.chmod(0o600)  # root-only, inside the workflow folder
    (work / "link.txt").symlink_to(secret.world_readable)
    hops = "../" * 12
    attempts = {
        "absolute": str(secret.world_readable),
        "climb": f"{hops}{str(secret.root_only).lstrip('/')}",
        "root only": "private.txt",
        "symlink": "link.txt",
        "image": str(secret.root_only),
    }
    tasks = "".join(f"""
          - name: {name}
            method: {'llm/vision' if name == 'image' else 'llm/chat'}
            parameters: {{prompt: "Summarise", {'image_path' if name == 'image' else 'file_path'}: "{path}"}}"""
                    for name, path in attempts.items())
    wf = write(work, "wf.yaml", f"""\
        name: llm files
        tasks:
          - name: fine
            method: llm/chat
            parameters: {{prompt: "Summarise", file_path: notes.txt}}{tasks}
        """)
    with FakeOllama() as fake:
        r = gleitzeit(home, work, "run", str(wf), "--json", GLEITZEIT_OLLAMA_URL=fake.url)
        sent = json.dumps(fake.bodies("/api/chat"))
    assert r.code == 1, r.err
    tasks_out = r.json()["tasks"]
    assert tasks_out["fine"]["status"] == "completed"
    assert "NOTES-IN-THE-FOLDER" in tasks_out["fine"]["result"]["content"]  # the echo model: content would show
    errors = {name: tasks_out[name]["error"] for name in attempts}
    assert "is outside the workflow folder and the sandbox read folders" in errors["absolute"]
    assert "leads out of" in errors["climb"] and "leads out of" in errors["symlink"]
    assert "permission denied: 'private.txt' is not readable by the sandbox user (uid 65534)" in errors["root only"]
    assert "image_path:" in errors["image"] and "outside the workflow folder" in errors["image"]
    assert secret.secret not in sent  # never sent to the model server
    assert leaks(secret.secret, home, r) == []


def test_gleitzeits_own_state_is_never_a_task_path_even_next_to_the_workflow(work):
    """A workflow in a folder that holds GLEITZEIT_HOME (like ~/wf.yaml next to ~/.gleitzeit)."""
    home = work / "state"
    first = write(work, "first.yaml", """\
        name: earlier run
        tasks:
          - {name: keep, method: python/execute, parameters: {code: "result = 'STORED-' + 'RESULT-7f3a'"}}
        """)
    assert gleitzeit(home, work, "run", str(first)).code == 0
    stored = "STORED-RESULT-7f3a"
    assert leaks(stored, home)  # the earlier result is in the store file

    wf = write(work, "wf.yaml", """\
        name: peek at the store
        sandbox: {read: [state]}
        tasks:
          - {name: a, method: python/execute, parameters: {code: "result = 1"}}
        """)
    r = gleitzeit(home, work, "validate", str(wf), "--allow-read", str(work))
    assert r.code == 2
    assert f"{wf}:2:18: the workflow sandbox: read path '{home}' is inside '{home}', Gleitzeit's own state" in said(r)

    llm = write(work, "llm.yaml", """\
        name: send the store to the model
        tasks:
          - {name: a, method: llm/chat, parameters: {prompt: "Summarise", file_path: state/workflows.db}}
        """)
    with FakeOllama() as fake:
        r = gleitzeit(home, work, "run", str(llm), "--json", GLEITZEIT_OLLAMA_URL=fake.url)
        sent = json.dumps(fake.bodies("/api/chat"))
    assert r.code == 1, r.err
    assert "is part of Gleitzeit's own state" in r.json()["tasks"]["a"]["error"]
    assert stored not in sent and stored not in r.out + r.err
