"""The provider inside Gleitzeit: through the host's provider actor, and the example
workflows through ``gleitzeit run`` with GLEITZEIT_OLLAMA_URL pointing at the fake server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from fake_ollama import FakeOllama, Reply
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_core.providers.manifest import load_manifest
from provider_client import REPO, provider_env

MANIFEST = REPO / "provider_ollama" / "manifest.yaml"


def _gleitzeit(args: list[str], fake: FakeOllama, home: Path) -> subprocess.CompletedProcess[str]:
    env = provider_env(HOME=str(home), GLEITZEIT_OLLAMA_URL=fake.url)
    return subprocess.run(
        [sys.executable, "-m", "gleitzeit_core.cli.main", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.anyio
async def test_host_receives_streamed_deltas_and_readable_errors(fake: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the manifest runs `python -m provider_ollama`
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    deltas: list[tuple[str, str]] = []
    async with ProviderHost([load_manifest(MANIFEST)], config={"ollama": {"endpoint": fake.url}}) as host:
        actor = host.actor("ollama")
        with anyio.fail_after(30):
            result = await actor.request("llm/chat", {"prompt": "stream this"}, on_output=lambda s, d: deltas.append((s, d)))
            with pytest.raises(ProviderError) as missing:
                await actor.request("llm/chat", {"model": "phi4", "prompt": "hi"})
    assert deltas == [("delta", "echo:"), ("delta", " stream"), ("delta", " this")]
    assert result["content"] == "echo: stream this"
    assert missing.value.retryable is False
    assert "model 'phi4' not found; run `ollama pull phi4`" in str(missing.value)


def test_example_llm_workflow(fake: FakeOllama, tmp_path: Path) -> None:
    fake.script(Reply(text="Gears turn without rest"), Reply(text="Quiet Machines"))
    proc = _gleitzeit(["run", "examples/llm.yaml", "--backend", "memory", "--json"], fake, tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert run["status"] == "completed"
    assert run["tasks"]["Title"]["result"]["content"] == "Quiet Machines"
    title_prompt = fake.bodies("/api/generate")[0]["prompt"]
    assert title_prompt.endswith("at most five words:\nGears turn without rest")  # ${Haiku.result.content}
    assert fake.bodies("/api/chat")[0]["options"] == {"temperature": 0.7, "num_predict": 100}


def test_example_mixed_workflow(fake: FakeOllama, tmp_path: Path) -> None:
    fake.script(Reply(text='{"largest": 92, "count": 5}'))
    proc = _gleitzeit(["run", "examples/mixed.yaml", "--backend", "memory", "--json"], fake, tmp_path)
    assert proc.returncode == 0, proc.stderr
    tasks = json.loads(proc.stdout)["tasks"]
    assert tasks["Ask"]["result"]["parsed"] == {"largest": 92, "count": 5}
    assert tasks["Check"]["result"]["result"] == {
        "answer": {"largest": 92, "count": 5},
        "largest_is_right": True,
        "count_is_right": True,
    }
    sent = fake.bodies("/api/chat")[0]
    assert sent["format"] == "json"
    assert sent["messages"][-1]["content"].startswith("Here are numbers: [3, 14, 15, 92, 65].")


def test_verbose_run_prints_the_streamed_text(fake: FakeOllama, tmp_path: Path) -> None:
    fake.script(Reply(text="Gears turn without rest"), Reply(text="Quiet Machines"))
    proc = _gleitzeit(["-v", "--no-color", "run", "examples/llm.yaml", "--backend", "memory"], fake, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    # the deltas are joined back into whole lines
    assert "| Gears turn without rest" in out and "| Quiet Machines" in out


def test_wrong_api_is_told_apart_from_missing_model_and_unreachable(fake: FakeOllama, tmp_path: Path) -> None:
    """Through the real executable: an OpenAI-compatible server used in Ollama mode is reported
    as the wrong API, by `provider health` (not "unreachable") and by a task (not "ollama pull")."""
    fake.openai_only = True
    health = _gleitzeit(["provider", "health", "ollama", "--json"], fake, tmp_path)
    assert health.returncode == 1, health.stderr
    probe = json.loads(health.stdout)
    assert probe["state"] == "unhealthy" and probe["health"]["server"] == "wrong_api"
    assert "unreachable" not in probe["error"] and "set `api: openai`" in probe["error"]
    human = _gleitzeit(["provider", "health", "ollama"], fake, tmp_path)
    assert "server wrong_api" in human.stdout and "providers.ollama.api openai" in human.stdout

    workflow = tmp_path / "chat.yaml"
    workflow.write_text("name: chat\ntasks:\n  - name: ask\n    method: llm/chat\n    parameters: {prompt: hi}\n")
    run = _gleitzeit(["run", str(workflow), "--backend", "memory", "--json"], fake, tmp_path)
    assert run.returncode == 1
    error = json.loads(run.stdout)["tasks"]["ask"]["error"]
    assert "/api/chat does not exist" in error and "set `api: openai`" in error and "pull" not in error
