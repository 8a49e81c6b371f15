"""Issue 18 "Scale": nothing on the way from a workflow file to a finished run is
quadratic in tasks, edges, reference length or result size.

One test per hot path: the input is scaled ×10 and the work it costs is counted (Python
calls and lines run, via a trace hook, or memory held at once, via tracemalloc), never
timed. Linear work grows ≤ ``LINEAR`` (12)× for ×10 input; a quadratic path grows ~100×.
The loader, positions, graph, reference-parsing, run and live-view tests were each checked
against a planted quadratic step in their path (a scan of every name, key, task or spec per
item): each such step fails its test.
"""

from __future__ import annotations

import io
import json

import anyio
import pytest
import yaml
from rich.console import Console

from benchmarks.shapes import build, layered
from gleitzeit_core._api.validate import level_names, references_of
from gleitzeit_core.cli.live_view import LiveView
from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import WorkflowInvalid
from gleitzeit_core.scheduler.events import TaskUpdated
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.factory import make_store
from gleitzeit_core.store.records import RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.workflow import graph, params_check, source
from gleitzeit_core.workflow.loader import load_workflow, load_workflow_text
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.refs import scan_string, substitute
from tests.core.scheduler.test_scheduler import Scripted, spec
from tests.helpers.counting import LINEAR, LINEAR_MEMORY, peak_bytes, work


def layered_yaml(n: int, *, reads: bool = True) -> str:
    """~n tasks in layers of 10, each on 2–3 tasks of the layer before, the first of them read."""
    shape = layered(n, width=10)
    tasks = [{"name": t.key, "method": "noop/pass", "dependencies": list(t.deps),
              "params": {"value": f"${{{t.deps[0]}.result.value}}" if (t.deps and reads) else 1}}
             for t in shape.nodes]
    return yaml.safe_dump({"name": f"layered {n}", "tasks": tasks}, sort_keys=False)


def ratio(cost, small: int) -> float:  # type: ignore[no-untyped-def]
    return cost(small * 10) / cost(small)


# -- loader -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_loading_a_layered_dag_is_linear_in_tasks_and_edges(fmt: str) -> None:
    def text(n: int) -> str:
        body = layered_yaml(n)
        return body if fmt == "yaml" else json.dumps(yaml.safe_load(body))

    def cost(n: int) -> int:
        t = text(n)
        return work(lambda: load_workflow_text(t, filename=f"wf.{fmt}"))

    assert ratio(cost, 300) <= LINEAR


def test_loading_holds_memory_linear_in_the_file() -> None:
    def cost(n: int) -> int:
        t = layered_yaml(n)
        return peak_bytes(lambda: load_workflow_text(t, filename="wf.yaml"))

    assert ratio(cost, 300) <= LINEAR_MEMORY


def test_the_plan_validate_shows_is_linear_in_tasks() -> None:
    """`gleitzeit validate`'s plan past the provider checks: the levels by task name and what each
    reference reads (a key → task map built per task made 100,000 tasks take hours)."""
    def cost(n: int) -> int:
        wf = load_workflow_text(layered_yaml(n), filename="wf.yaml")
        return work(lambda: (level_names(wf), references_of(wf)))

    assert ratio(cost, 300) <= LINEAR


# -- source positions ---------------------------------------------------------------------

def test_placing_a_problem_in_every_task_is_linear() -> None:
    """Every task has a problem (an unknown key, a bad priority): each is placed at its
    file:line:col from the position table, not by searching the file."""
    def text(n: int) -> str:
        return yaml.safe_dump({"name": "bad", "tasks": [
            {"name": f"t{i}", "method": "noop/pass", "colour": "red", "priority": "soon"} for i in range(n)]})

    def cost(n: int) -> int:
        t = text(n)

        def load() -> None:
            with pytest.raises(WorkflowInvalid) as exc:
                load_workflow_text(t, filename="bad.yaml")
            assert len(exc.value.problems) == 2 * n
        return work(load)

    assert ratio(cost, 200) <= LINEAR


# -- graph checks -------------------------------------------------------------------------

def test_graph_checks_are_linear_in_edges() -> None:
    """Cycle search, levels and reachability on a chain where every task also reads the first."""
    def cost(n: int) -> int:
        deps = {"t0": ()} | {f"t{i}": (f"t{i - 1}",) for i in range(1, n)}
        wf = Workflow(id="w", name="w", tasks=tuple(spec(k, deps=d) for k, d in deps.items()))
        pairs = [(f"t{i}", "t0") for i in range(2, n)]
        return work(lambda: (graph.find_cycles(deps), graph.levels(wf), graph.depends_on(deps, pairs)))

    assert ratio(cost, 500) <= LINEAR


def test_a_valid_graph_needs_no_component_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kahn's pass proves a valid graph acyclic; Tarjan's search runs only to report a cycle."""
    searched = []
    real = graph._strongly_connected
    monkeypatch.setattr(graph, "_strongly_connected", lambda g: searched.append(1) or real(g))
    assert graph.find_cycles({"a": (), "b": ("a",), "c": ("a", "b")}) == []
    assert searched == []
    assert graph.find_cycles({"a": ("c",), "b": ("a",), "c": ("b",)}) == [["a", "b", "c", "a"]]
    assert searched == [1]


# -- parameters against schemas -----------------------------------------------------------

METHODS = {"noop/pass": {"paramsSchema": {"type": "object", "properties": {"value": {"type": "integer"}},
                                          "additionalProperties": False}}}


def test_a_valid_file_is_not_parsed_again_for_parameter_positions(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "wf.yaml"
    path.write_text(layered_yaml(200, reads=False))
    wf = load_workflow(path)
    parses = []
    real = params_check.parse
    monkeypatch.setattr(params_check, "parse", lambda *a: parses.append(1) or real(*a))
    assert params_check.check_params(wf, METHODS) == []
    assert parses == []
    path.write_text(path.read_text().replace("value: 1", "value: one", 1))
    problems = params_check.check_params(load_workflow(path), METHODS)
    assert [p.where for p in problems] == [f"{path}:7:12"] and parses == [1]  # the problem's own value


def test_identical_parameters_are_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated workflow repeats parameter shapes; whole references stand in as unknowns,
    so ``${a.result}`` and ``${b.result}`` are the same shape."""
    wf = load_workflow_text(layered_yaml(300), filename="wf.yaml")
    validated = []
    real = params_check.Draft202012Validator.iter_errors
    monkeypatch.setattr(params_check.Draft202012Validator, "iter_errors",
                        lambda self, inst, *a: validated.append(isinstance(inst, dict) and "value" in inst) or real(self, inst, *a))
    assert params_check.check_params(wf, METHODS) == []
    assert validated.count(True) == 2  # whole parameters {value: 1} and {value: <a reference>}


# -- references: parsing and substitution --------------------------------------------------

def test_parsing_a_reference_is_linear_in_its_length() -> None:
    names = {"gen": "gen"}

    def cost(n: int) -> int:
        text = "${gen.result." + ".".join(f"k{i}" for i in range(n)) + "}"
        return work(lambda: scan_string(text, names))

    assert ratio(cost, 40) <= LINEAR  # 40 and 400 segments (the length limit is 2,000 characters)


@pytest.mark.parametrize("where", ["context", "code", "text"])
def test_substituting_a_result_is_linear_in_its_size(where: str) -> None:
    """A whole value into `context`, into `code` (one JSON text, built in C), or into a text;
    its depth is checked on the way (a walk over its values), nothing more. That 10 MB cost
    the same through `code` as through `context` is tests/workflow/test_refs.py's
    test_a_big_value_costs_the_same_into_code_as_into_context."""
    params = {"context": {"code": "result = 1", "context": {"rows": "${gen.result.rows}"}},
              "code": {"code": "rows = ${gen.result.rows}"},
              "text": {"prompt": "rows: ${gen.result.rows}"}}[where]

    def results(n: int) -> dict:
        return {"gen": {"rows": [{"id": i, "name": f"row {i}", "v": i * 0.5} for i in range(n)]}}

    def run(n: int):  # type: ignore[no-untyped-def]
        r = results(n)
        return lambda: substitute(params, results=r, task_names={"gen": "gen"}, code_params={"code": "python"})

    assert ratio(lambda n: work(run(n)), 2_000) <= LINEAR
    assert ratio(lambda n: peak_bytes(run(n)), 2_000) <= LINEAR_MEMORY


# -- scheduler ready-set and store writes -------------------------------------------------

async def _run(n: int, backend: str, db: str) -> None:
    shape = build("layered", n)
    wf = Workflow(id="wf", name="wf", tasks=tuple(spec(t.key, deps=t.deps) for t in shape.nodes))
    run_rec, recs = new_run(wf)
    store = make_store(backend, sqlite_path=db)
    async with store:
        await store.create_run(run_rec, list(recs.values()))
        final = await Scheduler(wf, run_rec, recs, store, Scripted(lambda k, p, a: {"v": 1}),
                                RunOptions(max_concurrent=8)).execute()
    assert final.status is RunStatus.COMPLETED


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_run_costs_the_same_per_task_at_ten_times_the_tasks(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The scheduler's ready set (what may start once a task finishes) and the store's writes:
    the work in the engine's thread per task stays flat from 200 to 2,000 tasks."""
    def cost(n: int) -> int:
        return work(lambda: anyio.run(_run, n, backend, str(tmp_path / f"run{n}.db")))

    assert ratio(cost, 200) <= LINEAR


# -- live view ----------------------------------------------------------------------------

def test_the_live_view_costs_the_same_per_event_at_ten_times_the_tasks() -> None:
    def cost(n: int) -> int:
        specs = [TaskSpec(key=f"t{i}", name=f"t{i}", protocol="noop/v1", method="noop/pass", params={})
                 for i in range(n)]
        view = LiveView(Console(file=io.StringIO(), width=120, height=40), "big", specs, False)
        recs = [TaskRecord(id=s.key, run_id="r", key=s.key, name=s.name, protocol=s.protocol, method=s.method)
                for s in specs]

        def feed() -> None:
            for rec in recs:
                for status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.COMPLETED):
                    rec.status = status
                    view(TaskUpdated(rec))
            view.console.print(view.render())
        return work(feed)

    assert ratio(cost, 300) <= LINEAR


def test_the_source_position_table_is_not_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Marks answer by container identity: a lookup costs the same in a 10× bigger file."""
    def cost(n: int) -> int:
        data, marks, _ = source.parse(layered_yaml(n), "wf.yaml", "yaml")
        tasks = data["tasks"]
        return work(lambda: [marks.value(tasks[-1], "params") for _ in range(100)])

    assert cost(3000) == cost(300)
