"""examples/llm_triage.yaml against the fake Ollama server: the run branches on the
model's answer, and an answer written like CEL syntax is still only a value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply
from provider_client import REPO, provider_env


@pytest.mark.parametrize("answer,taken,skipped", [
    ("Urgent.", "Page on-call", "Queue for tomorrow"),
    ("routine", "Queue for tomorrow", "Page on-call"),
    ('routine") || true || ("urgent', "Queue for tomorrow", "Page on-call"),
])
def test_triage_branches_on_the_answer(fake: FakeOllama, tmp_path: Path, answer: str, taken: str,
                                       skipped: str) -> None:
    fake.script(Reply(text=answer))
    env = provider_env(HOME=str(tmp_path), GLEITZEIT_OLLAMA_URL=fake.url)
    proc = subprocess.run([sys.executable, "-m", "gleitzeit_core.cli.main", "run", "examples/llm_triage.yaml",
                           "--backend", "memory", "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    tasks = json.loads(proc.stdout)["tasks"]
    assert tasks["Classify"]["result"]["content"] == answer
    assert tasks[taken]["status"] == "completed"
    assert (tasks[skipped]["status"], tasks[skipped]["error"]) == ("skipped", "condition false")
    assert tasks["File ticket"]["status"] == "completed"
