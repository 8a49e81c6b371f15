"""Providers written from the docs alone, used the way a third party would: the sdk/README.md
example copied out of the Markdown and its commands run exactly as printed, the Perl example
(examples/providers/perl, core modules only), each registered with `provider add` (which asks
the provider what it serves) and used in a workflow. Plus manifest validation."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from tests.cli.conftest import Cli, write
from tests.helpers.cli import REPO

README = (REPO / "sdk" / "README.md").read_text()
PERL_MANIFEST = REPO / "examples" / "providers" / "perl" / "manifest.yaml"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def python_on_path(work: Path) -> str:
    """The README's manifest says `command: python`; on Debian that name may be missing, so
    it points at this interpreter (the one gleitzeit_sdk is installed in)."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python"  # a script, not a symlink: a venv's interpreter must keep its path
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_the_sdk_readme_provider_works_exactly_as_printed(mem: Cli, work: Path):
    (work / "wordy.py").write_text(blocks("python")[0])
    manifest = blocks("yaml")[0]
    assert manifest.startswith("# wordy.yaml\n") and "protocols" not in manifest  # the docs do not need it
    (work / "wordy.yaml").write_text(manifest)
    path = python_on_path(work)
    commands = [shlex.split(line) for line in blocks("sh")[0].splitlines() if line.strip()]
    assert [c[:3] for c in commands] == [["gleitzeit", "provider", "check"], ["gleitzeit", "provider", "add"]]
    for argv in commands:
        r = mem(*argv[1:], PATH=path)
        assert r.code == 0, f"{' '.join(argv)}: {r.err}\n{r.out}"
    listed = {p["name"]: p for p in mem.ok("provider", "list", "--json", PATH=path).json()}
    assert listed["wordy"]["protocols"] == ["wordy/v1"]
    wf = write(work, "wf.yaml", """
        name: words
        tasks:
          - {name: count, method: wordy/count, params: {text: "a b a", unique: true}}
          - {name: spell, method: wordy/spell, params: {word: hi}, timeout: 30}
        """)
    out = mem("run", str(wf), "--json", PATH=path).json()
    assert out["status"] == "completed", out
    assert out["tasks"]["count"]["result"] == {"words": 2} and out["tasks"]["spell"]["result"] == ["h", "i"]


def test_the_perl_provider_is_registered_from_its_handshake_and_runs_a_workflow(mem: Cli, work: Path):
    added = mem.ok("provider", "add", str(PERL_MANIFEST), "--json").json()
    assert added["name"] == "wordcount" and added["protocols"] == ["wordcount/v1"]
    wf = write(work, "wf.yaml", """
        name: perl
        tasks:
          - {name: count, method: wordcount/count, params: {text: "one two three"}}
          - {name: slow, method: wordcount/slow, params: {seconds: 0.5, steps: 2}}
        """)
    out = mem("run", str(wf), "--json").json()
    assert out["tasks"]["count"]["result"] == {"words": 3}
    assert out["tasks"]["slow"]["result"] == {"steps": 2} and out["status"] == "completed"


def test_a_manifest_whose_protocols_disagree_with_the_provider_is_refused(mem: Cli, work: Path):
    text = PERL_MANIFEST.read_text().replace("args: [provider.pl]", f"args: [{PERL_MANIFEST.parent / 'provider.pl'}]")
    bad = write(work, "bad.yaml", text + "protocols: [words/v1]\n")
    r = mem("provider", "add", str(bad))
    assert r.code == 1
    assert "serves wordcount/v1 but its manifest" in r.err and "says protocols: words/v1" in r.err


def test_manifest_problems_are_one_line_each_with_position(mem: Cli, work: Path):
    bad = write(work, "bad.yaml", """\
        name: x
        comand: perl
        max_in_flight: 0
        restart: {max_restarts: two}
        """)
    r = mem("provider", "add", str(bad))
    assert r.code == 2, r.err
    lines = [line.removeprefix("error: ") for line in r.err.splitlines() if line.strip()]
    assert f"{bad}:1:1: 'command' is a required property" in lines
    assert f"{bad}:2:1: unknown key 'comand' (did you mean 'command'?)" in lines
    assert f"{bad}:3:16: max_in_flight: 0 is less than the minimum of 1" in lines
    assert f"{bad}:4:25: restart.max_restarts: 'two' is not of type 'integer'" in lines
    assert "Traceback" not in r.err
