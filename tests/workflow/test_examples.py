"""Every example workflow loads and says what its README promises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gleitzeit_core.workflow.graph import levels
from gleitzeit_core.workflow.loader import load_workflow
from gleitzeit_core.workflow.policy import Allowance

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def test_the_expected_examples_exist() -> None:
    assert {p.name for p in FILES} >= {"seed_generate_process.yaml", "seed_calculate.yaml", "diamond.yaml",
                                       "retry.yaml", "failing_branch.yaml", "file_context.yaml"}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_loads(path: Path) -> None:
    wf = load_workflow(path, allowance=Allowance(workflow_providers=True))  # polyglot brings a provider
    assert wf.tasks and all(t.method.count("/") == 1 and t.protocol.endswith("/v1") for t in wf.tasks)
    for task in wf.tasks:
        if "file" in task.params:
            assert os.path.isfile(os.path.join(wf.base_dir, task.params["file"])), task.params["file"]


def test_seed_workflows_are_verbatim() -> None:
    wf = load_workflow(EXAMPLES / "seed_generate_process.yaml")
    gen, proc = wf.tasks
    assert (gen.name, proc.name, proc.dependencies) == ("Generate Data", "Process Results", ("Generate Data",))
    assert "data = ${Generate Data.result.result}\n" in proc.params["code"]
    assert proc.retry.max_attempts == 3 and gen.params["timeout"] == 10
    calc = load_workflow(EXAMPLES / "seed_calculate.yaml").tasks[0]
    assert calc.params["code"] == "import math\nresult = math.sqrt(16) * 2\nprint(f\"Result: {result}\")\n"


def test_shapes() -> None:
    assert levels(load_workflow(EXAMPLES / "diamond.yaml")) == [["Split"], ["Sum of squares", "Evens"], ["Join"]]
    assert load_workflow(EXAMPLES / "retry.yaml").by_key()["Flaky step"].retry.max_attempts == 3
    branch = load_workflow(EXAMPLES / "failing_branch.yaml")
    assert branch.by_key()["Report ratio"].dependencies == ("Divide",)
    assert branch.by_key()["Count"].dependencies == ("Load",)
