"""What a workflow's `sandbox:` and `providers:` may ask for, decided by the runner's Allowance.

In-process through the loader (fast enough to be the mutation-testing selection for
gleitzeit_core/workflow/policy.py, docs/testing.md); the subprocess versions of these rules are
in tests/security/test_policy.py.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap

import pytest

from gleitzeit_core.errors import WorkflowInvalid
from gleitzeit_core.workflow.loader import load_workflow_text
from gleitzeit_core.workflow.policy import Allowance


def load(sandbox: str, tmp_path, allowance: Allowance = Allowance(), extra: str = ""):
    text = f"name: x\n{extra}sandbox: {sandbox}\ntasks:\n  - {{name: A, method: python/execute}}\n"
    return load_workflow_text(textwrap.dedent(text), filename="wf.yaml", base_dir=str(tmp_path),
                              allowance=allowance)


def refused(sandbox: str, tmp_path, allowance: Allowance = Allowance(), extra: str = "") -> str:
    with pytest.raises(WorkflowInvalid) as info:
        load(sandbox, tmp_path, allowance, extra)
    return str(info.value)


def test_network_needs_the_runners_allowance(tmp_path) -> None:
    message = refused("{network: true}", tmp_path)
    assert "wf.yaml:2:20" in message and "--allow-network" in message
    assert load("{network: true}", tmp_path, Allowance(network=True)).sandbox == {"network": True}
    assert load("{network: false}", tmp_path).sandbox == {"network": False}


def test_memory_up_to_the_cap_is_granted_one_above_is_refused(tmp_path) -> None:
    cap = 4096  # docs/security.md: "memory_mb: N | up to 4096"
    assert load(f"{{memory_mb: {cap}}}", tmp_path).sandbox == {"memory_mb": cap}
    assert load("{memory_mb: 64}", tmp_path).sandbox == {"memory_mb": 64}
    message = refused(f"{{memory_mb: {cap + 1}}}", tmp_path)
    assert f"'memory_mb: {cap + 1}' is above the {cap} MiB you allow" in message
    assert f"--max-memory-mb {cap + 1}" in message
    assert load("{memory_mb: 9000}", tmp_path, Allowance(max_memory_mb=9000)).sandbox == {"memory_mb": 9000}


def test_disk_up_to_the_quota_is_granted_above_is_refused_and_zero_means_no_quota(tmp_path) -> None:
    cap = 1024  # docs/security.md: the default sandbox.max_disk_mb
    assert load(f"{{disk_mb: {cap}}}", tmp_path).sandbox == {"disk_mb": cap}
    assert load("{disk_mb: 16}", tmp_path).sandbox == {"disk_mb": 16}
    message = refused(f"{{disk_mb: {cap + 1}}}", tmp_path)
    assert f"'disk_mb: {cap + 1}' is above the {cap} MiB workspace quota" in message
    assert f"GLEITZEIT_SANDBOX_MAX_DISK_MB={cap + 1}" in message
    assert load("{disk_mb: 999999}", tmp_path, Allowance(max_disk_mb=0)).sandbox == {"disk_mb": 999999}


def test_read_paths_inside_the_workflow_folder_or_an_allowed_folder_are_granted_resolved(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "link").symlink_to(data)
    assert load("{read: [link, data/sub, .]}", tmp_path).sandbox == {
        "read": [str(data), str(data / "sub"), str(tmp_path)]}
    outside = tmp_path.parent / (tmp_path.name + "-other")  # a sibling whose name starts like the folder
    message = refused(f"{{read: [{outside}]}}", tmp_path)
    assert f"read path {str(outside)!r} is not in a folder you allow" in message
    assert f"--allow-read {outside}" in message
    granted = load(f"{{read: [{outside}/x]}}", tmp_path, Allowance.of(read=[str(outside)]))
    assert granted.sandbox == {"read": [str(outside / "x")]}
    # a write allowance covers reading too
    assert load(f"{{read: [{outside}]}}", tmp_path, Allowance.of(write=[str(outside)])).sandbox == {
        "read": [str(outside)]}


def test_write_needs_a_write_allowance_even_inside_the_workflow_folder(tmp_path) -> None:
    message = refused("{write: [out]}", tmp_path)
    assert f"write path {str(tmp_path / 'out')!r} is not in a folder you allow" in message
    assert "--allow-write" in message and "sandbox.allow_write" in message
    assert "--allow-read" not in refused("{write: [out]}", tmp_path, Allowance.of(read=[str(tmp_path)]))
    assert load("{write: [out]}", tmp_path, Allowance.of(write=[str(tmp_path)])).sandbox == {
        "write": [str(tmp_path / "out")]}


def test_allowance_of_expands_home_and_resolves_symlinks(tmp_path, monkeypatch) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    monkeypatch.setenv("HOME", str(tmp_path))
    allowance = Allowance.of(read=["~/alias"], write=["~/real/w"], network=True, max_memory_mb=7,
                             max_disk_mb=3, workflow_providers=True, private=("/p",))
    assert allowance == Allowance(read=(str(real),), write=(str(real / "w"),), network=True, max_memory_mb=7,
                                  max_disk_mb=3, workflow_providers=True, private=("/p",))
    assert Allowance.of() == Allowance()  # allows nothing extra, providers included
    with pytest.raises(dataclasses.FrozenInstanceError):  # the loader's limits cannot be widened on the way
        allowance.network = False  # type: ignore[misc]
    monkeypatch.chdir(real)
    assert Allowance.of(read=["sub"]).read == (str(real / "sub"),)  # relative to the cwd


def test_gleitzeits_own_state_is_refused_whatever_is_allowed(tmp_path) -> None:
    state = tmp_path / "state"
    allowance = Allowance.of(read=[str(tmp_path)], write=[str(tmp_path)], private=(str(state),))
    for kind in ("read", "write"):
        message = refused(f"{{{kind}: [state/db]}}", tmp_path, allowance)
        assert f"is inside {str(state)!r}, Gleitzeit's own state" in message
    assert load("{read: [statement]}", tmp_path, allowance).sandbox == {"read": [str(tmp_path / "statement")]}


PROVIDER = "providers: [%s]\n"


def test_workflow_providers_need_the_allowance_and_a_manifest_in_the_workflow_folder(tmp_path) -> None:
    message = refused("{}", tmp_path, extra=PROVIDER % "p.toml")
    assert "'providers' starts programs the workflow file names" in message and "--allow-providers" in message
    allowed = Allowance(workflow_providers=True)
    outside = tmp_path.parent / "p.toml"
    message = refused("{}", tmp_path, allowed, extra=PROVIDER % outside)
    assert f"provider manifest {str(outside)!r} is outside the workflow folder" in message
    assert load("{}", tmp_path, allowed, extra=PROVIDER % "p.toml").sandbox == {}  # read when the run starts


def test_without_a_workflow_folder_nothing_is_inside_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = "name: x\nsandbox: {read: [data]}\ntasks:\n  - {name: A, method: python/execute}\n"
    with pytest.raises(WorkflowInvalid) as info:
        load_workflow_text(text, filename="wf.yaml")
    assert f"read path {os.path.join(str(tmp_path), 'data')!r} is not in a folder you allow" in str(info.value)
