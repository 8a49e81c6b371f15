"""Map tasks (`for_each`) in the scheduler, in-process over the memory store and the scripted
dispatcher: where the items come from (a literal, a result, a glob) and the errors when they
cannot be had, the per-map slots, the failure policies' messages, and a map a resume hands
over half done. Part of the mutation-testing selection for scheduler/fanout.py
(docs/testing.md, `scheduler_fanout` and `scheduler_fanout_rest`); test_fanout.py counts the store writes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from dataclasses import replace
from typing import Any, Iterator

import anyio
import pytest

from gleitzeit_core.cache.lookup import ResultCache
from gleitzeit_core.dispatch.scripted import ScriptedCall
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.results import INLINE_RESULT_BYTES
from gleitzeit_core.dispatch.scripted import ScriptedDispatcher
from gleitzeit_core.scheduler.scheduler import CONDITION_FALSE, RunOptions, Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskRecord, TaskStatus, new_id
from gleitzeit_core.workflow.cache_spec import CacheSpec
from gleitzeit_core.workflow.foreach import FailurePolicy, ForEach
from gleitzeit_core.workflow.model import Condition, TaskSpec, Workflow
from gleitzeit_core.workflow.triggers import Trigger
from gleitzeit_sdk.codes import FailureKind
from tests.core.scheduler.harness import prepare, run, task

pytestmark = pytest.mark.anyio

CONTINUE = FailurePolicy(max_failures=None)


def mapped(key: str, *deps: str, **for_each: Any) -> TaskSpec:
    return task(key, *deps, params={"x": "${item}", "i": "${item_index}"}, for_each=ForEach(**for_each))


def times_ten(call: ScriptedCall) -> Any:
    if call.task.key == "src":
        return SOURCE
    if call.params.get("x") == "bad":
        raise ProviderError("bad item\nsecond line", retryable=False)
    if call.params.get("x") == "stop":
        raise ProviderError("stopped", kind=FailureKind.CANCELLED, retryable=False)
    return call.params if "all" in call.params else call.params["x"] * 10


SOURCE: Any = None


# -- where the items come from -------------------------------------------------------------
async def test_a_map_over_a_result_gives_each_item_its_value_and_index_and_collects_in_order() -> None:
    global SOURCE
    SOURCE = [3, 1, 2]
    tasks = [task("src"), mapped("m", "src", source="${src.result}"), task("sum", "m", params={"all": "${m.result}"})]
    ran = await run(tasks, times_ten)
    assert ran.tasks["sum"].result == {"all": [30, 10, 20]}
    calls = {c.task.key: c.params for c in ran.dispatcher.calls if c.task.key.startswith("m[")}
    assert calls == {"m[0]": {"x": 3, "i": 0}, "m[1]": {"x": 1, "i": 1}, "m[2]": {"x": 2, "i": 2}}
    assert [(t.name, t.parent, t.item_index, t.item) for t in
            sorted((t for t in await ran.store.list_tasks(run_id=ran.final.run_id) if t.parent), key=lambda t: t.key)
            ] == [("m[0]", "m", 0, 3), ("m[1]", "m", 1, 1), ("m[2]", "m", 2, 2)]


async def test_a_map_over_a_big_result_reads_it_from_blob_storage() -> None:
    global SOURCE
    SOURCE = ["x" * (INLINE_RESULT_BYTES // 2)] * 3
    ran = await run([task("src"), task("m", "src", params={"n": "${item}"}, for_each=ForEach(source="${src.result}"))],
                    lambda call: SOURCE if call.task.key == "src" else len(call.params["n"]))
    assert ran.tasks["src"].result_blob is not None
    assert ran.tasks["m"].result == [INLINE_RESULT_BYTES // 2] * 3


async def test_an_empty_map_completes_with_an_empty_list_and_its_dependents_run() -> None:
    ran = await run([mapped("m", source=[]), task("after", "m", params={"all": "${m.result}"})], times_ten)
    assert ran.tasks["m"].status is TaskStatus.COMPLETED and ran.tasks["m"].result == []
    assert ran.started == ["after"] and ran.tasks["after"].result == {"all": []}


@pytest.mark.parametrize("value,kind", [
    (None, "null"), (True, "a bool"), (3, "a number"), (2.5, "a number"), ("text", "a string"),
    ({}, "an empty object"), ({f"k{i}": i for i in range(7)}, "an object with keys k0, k1, k2, k3, k4"),
])
async def test_a_map_over_something_not_a_list_fails_naming_what_it_got(value: Any, kind: str) -> None:
    global SOURCE
    SOURCE = value
    ran = await run([task("src"), mapped("m", "src", source="${src.result}"), task("after", "m")], times_ten)
    assert ran.tasks["m"].status is TaskStatus.FAILED
    assert ran.tasks["m"].error == f"for_each: ${{src.result}} is {kind}; for_each needs a list"
    assert ran.tasks["m"].started_at is not None and ran.tasks["m"].finished_at is not None
    assert ran.tasks["after"].status is TaskStatus.SKIPPED and ran.final.status is RunStatus.FAILED


async def test_a_map_source_that_cannot_be_resolved_fails_the_map() -> None:
    bad_syntax = await run([task("src"), mapped("m", "src", source="${src.result")], times_ten)
    assert bad_syntax.tasks["m"].status is TaskStatus.FAILED and bad_syntax.tasks["m"].error.startswith("for_each: ")

    def src_fails(call: ScriptedCall) -> Any:
        raise ProviderError("no source", retryable=False)

    cleanup = task("m", "src", params={"x": "${item}"}, for_each=ForEach(source="${src.result}"),
                   trigger=Trigger.ALL_DONE)
    failed = await run([task("src"), cleanup], src_fails)
    assert failed.tasks["m"].status is TaskStatus.FAILED
    assert "task 'src' failed, so it has no result to read" in failed.tasks["m"].error


async def test_the_item_limit_is_inclusive() -> None:
    ran = await run([mapped("m", source=list(range(3)))], times_ten, options=RunOptions(max_map_items=3))
    assert ran.tasks["m"].status is TaskStatus.COMPLETED and ran.tasks["m"].result == [0, 10, 20]


async def test_a_glob_map_has_one_item_per_visible_file_and_too_many_files_fail_it(tmp_path: Path) -> None:
    for name in ("b.txt", "a.txt", ".hidden.txt", "c.csv"):
        (tmp_path / name).write_text(name)
    glob = task("m", params={"path": "${item}"}, for_each=ForEach(glob="*.txt"))
    ran = await run([glob], lambda call: call.params["path"], base_dir=str(tmp_path))
    assert ran.tasks["m"].result == ["a.txt", "b.txt"]

    wide = await run([glob], lambda call: "ran", base_dir=str(tmp_path), options=RunOptions(max_map_items=1))
    assert wide.tasks["m"].status is TaskStatus.FAILED and wide.started == []
    assert wide.tasks["m"].error == ("for_each: 2 files match '*.txt'; at most 1 items per map "
                                     "(execution.max_map_items)")


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A folder the sandbox user can read (run as root, the cache hashes files as that user
    would read them; pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="gleitzeit-glob-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


async def test_the_contents_of_a_glob_item_s_file_are_part_of_its_cache_key(readable_dir: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (readable_dir / name).write_text(name)
    wf = Workflow(id="wf", name="wf", base_dir=str(readable_dir),
                  tasks=(task("m", params={"path": "${item}"}, for_each=ForEach(glob="*.txt"), cache=CacheSpec()),))
    store = InMemoryBackend()
    await store.open()

    async def again() -> list[str]:
        cache = ResultCache(store, wf, {"t/run": {}}, {"t/v1": {"name": "scripted", "version": "1"}})
        ran = await run(wf, lambda call: call.params["path"], store=store, options=RunOptions(cache=cache))
        assert ran.tasks["m"].result == ["a.txt", "b.txt"]
        return ran.started

    assert await again() == ["m[0]", "m[1]"]
    assert await again() == []
    (readable_dir / "b.txt").write_text("changed")
    assert await again() == ["m[1]"]


# -- slots and failure policies ------------------------------------------------------------
async def test_max_parallel_bounds_the_items_running_at_once_and_the_rest_follow_in_order() -> None:
    waiting: list[list[TaskStatus]] = []

    async def handler(call: ScriptedCall) -> Any:
        if call.task.key == "m[0]":  # the items past the map's slots are stored as not queued yet
            stored = {t.key: t.status for t in await ran_store.list_tasks(run_id=call.meta["runId"])}
            waiting.append([stored[f"m[{i}]"] for i in (2, 3, 4)])
        return times_ten(call)

    wf, run_rec, recs, ran_store = await prepare([mapped("m", source=list(range(5)), max_parallel=2)])
    ran = await run(wf, handler, store=ran_store, options=RunOptions(max_concurrent=10))
    assert waiting == [[TaskStatus.PENDING] * 3]
    assert ran.seen.peak_running(lambda k: k.startswith("m[")) == 2
    assert ran.started == [f"m[{i}]" for i in range(5)] and ran.tasks["m"].result == [0, 10, 20, 30, 40]
    stored = {t.key: t.status for t in await ran.store.list_tasks(run_id=ran.final.run_id)}
    assert stored["m[4]"] is TaskStatus.COMPLETED


async def test_a_failing_map_skips_the_items_not_started_naming_the_map_and_its_first_failure() -> None:
    ran = await run([task("m", name="The map", params={"x": "${item}"},
                          for_each=ForEach(source=[1, "bad", 2, "bad", 3], max_parallel=1))], times_ten)
    assert ran.started == ["m[0]", "m[1]"]
    assert ran.tasks["m"].error == ("1 of 5 items failed (on_item_failure: fail); first: item 1: bad item")
    for i in (2, 3, 4):
        rec = ran.tasks[f"m[{i}]"]
        assert (rec.status, rec.error) == (TaskStatus.SKIPPED, "map 'The map' stopped after 1 failed item(s)")
        assert rec.finished_at is not None
    stored = {t.key: t.status for t in await ran.store.list_tasks(run_id=ran.final.run_id)}
    assert stored["m[4]"] is TaskStatus.SKIPPED and stored["m"] is TaskStatus.FAILED


async def test_a_tolerant_map_counts_only_failed_items_and_reports_the_first() -> None:
    two = FailurePolicy(max_failures=2)
    ok = await run([mapped("m", source=[1, "bad", "bad", 2], on_failure=two)], times_ten)
    assert ok.tasks["m"].status is TaskStatus.COMPLETED and ok.tasks["m"].result == [10, None, None, 20]
    assert ok.final.status is RunStatus.COMPLETED
    over = await run([mapped("m", source=["bad", 1, "bad", "bad"], on_failure=two)], times_ten)
    assert over.tasks["m"].error == "3 of 4 items failed (on_item_failure: {max_failures: 2}); first: item 0: bad item"


async def test_a_map_whose_items_all_failed_fast_fails_once_they_are_final() -> None:
    ran = await run([mapped("m", source=["bad", "bad"]), task("after", "m")], times_ten)
    assert ran.tasks["m"].status is TaskStatus.FAILED and ran.tasks["after"].status is TaskStatus.SKIPPED
    assert ran.tasks["m"].error.startswith("2 of 2 items failed")


async def test_a_cancelled_item_leaves_the_map_incomplete_even_when_failures_are_tolerated() -> None:
    ran = await run([mapped("m", source=[1, "stop", 2], on_failure=CONTINUE)], times_ten)
    assert (ran.tasks["m"].status, ran.tasks["m"].error) == (TaskStatus.FAILED, "not every item completed (1 cancelled)")


async def test_an_item_condition_false_for_every_item_completes_the_map_at_once() -> None:
    none = task("m", params={"x": "${item}"}, for_each=ForEach(source=[1, 2]), when=Condition("item > 5"))
    ran = await run([none, task("after", "m", params={"all": "${m.result}"})], times_ten)
    assert ran.tasks["m"].status is TaskStatus.COMPLETED and ran.tasks["m"].result == [None, None]
    assert ran.started == ["after"]
    for item in (t for t in await ran.store.list_tasks(run_id=ran.final.run_id) if t.parent == "m"):
        assert (item.status, item.error) == (TaskStatus.SKIPPED, CONDITION_FALSE) and item.finished_at is not None


# -- a map a resume hands over -------------------------------------------------------------
def items(run_rec, recs, spec: TaskSpec, statuses: list[tuple[TaskStatus, Any]]) -> None:
    """The map ``spec`` expanded before the engine stopped: its items as the store kept them
    (handed over last item first: the scheduler orders them by index)."""
    recs[spec.key].status = TaskStatus.RUNNING
    for i, (status, result) in reversed(list(enumerate(statuses))):
        key = f"{spec.key}[{i}]"
        recs[key] = TaskRecord(id=new_id("task"), run_id=run_rec.run_id, key=key, name=key, protocol=spec.protocol,
                               method=spec.method, status=status, result=result, parent=spec.key,
                               item_index=i, item=i + 1, attempts=1 if status.finished else 0)


async def test_a_resumed_map_runs_only_its_unfinished_items_within_its_slots() -> None:
    # three retries held slots when the engine stopped, but the map has two
    spec = mapped("m", source=[1, 2, 3, 4, 5, 6, 7], max_parallel=2, on_failure=CONTINUE)
    before = [(TaskStatus.COMPLETED, "kept"), (TaskStatus.FAILED, None), (TaskStatus.RETRYING, None),
              (TaskStatus.RETRYING, None), (TaskStatus.RETRYING, None), (TaskStatus.PENDING, None),
              (TaskStatus.QUEUED, None)]
    ran = await run([spec], times_ten, edit=lambda r, recs: items(r, recs, spec, before),
                    options=RunOptions(max_concurrent=10))
    assert sorted(ran.started) == [f"m[{i}]" for i in range(2, 7)]
    assert ran.seen.peak_running(lambda k: k.startswith("m[")) == 2
    assert ran.tasks["m"].status is TaskStatus.COMPLETED
    assert ran.tasks["m"].result == ["kept", None, 30, 40, 50, 60, 70]


async def test_a_resumed_map_whose_items_had_all_finished_completes_without_dispatching() -> None:
    spec = mapped("m", source=[1, 2])
    ran = await run([spec, task("after", "m", params={"all": "${m.result}"})], times_ten,
                    edit=lambda r, recs: items(r, recs, spec, [(TaskStatus.COMPLETED, "a"), (TaskStatus.COMPLETED, "b")]))
    assert ran.started == ["after"] and ran.tasks["after"].result == {"all": ["a", "b"]}
    stored = {t.key: t.status for t in await ran.store.list_tasks(run_id=ran.final.run_id)}
    assert stored["m"] is TaskStatus.COMPLETED


async def test_a_resumed_map_not_stored_running_is_running_again_in_the_store() -> None:
    spec = mapped("m", source=[1, 2])
    seen_map: list[TaskStatus] = []

    async def handler(call: ScriptedCall) -> Any:
        stored = await store.get_task(recs["m"].id)
        assert stored is not None
        seen_map.append(stored.status)
        return "b"

    def queued_map(run_rec, recs):
        items(run_rec, recs, spec, [(TaskStatus.COMPLETED, "a"), (TaskStatus.PENDING, None)])
        recs["m"].status = TaskStatus.QUEUED

    wf, run_rec, recs, store = await prepare([spec], edit=queued_map)
    final = await Scheduler(wf, run_rec, recs, store, ScriptedDispatcher(handler)).execute()
    assert final.status is RunStatus.COMPLETED
    assert seen_map == [TaskStatus.RUNNING] and recs["m"].result == ["a", "b"]


@pytest.mark.parametrize("rule", [{"when": Condition("item > 1")}, {"trigger": Trigger.ONE_FAILED}])
async def test_a_resumed_map_s_pending_items_are_not_judged_again_by_the_map_s_condition_or_trigger(rule: Any) -> None:
    # Each item holds the map's spec: an item condition (it reads `item`, undeclared for the map)
    # or the map's trigger (the item has no dependencies) must not decide a pending item again.
    def failed_src(call: ScriptedCall) -> Any:
        raise ProviderError("src broke", retryable=False)

    spec = replace(mapped("m", "src", source=[1, 2, 3]), **rule)
    before = [(TaskStatus.SKIPPED, None), (TaskStatus.COMPLETED, 20), (TaskStatus.PENDING, None)]

    def stored(run_rec, recs):
        recs["src"].status = TaskStatus.FAILED
        items(run_rec, recs, spec, before)

    ran = await run([task("src"), spec], times_ten, edit=stored)
    assert ran.started == ["m[2]"] and ran.tasks["m[2]"].status is TaskStatus.COMPLETED
    assert ran.tasks["m"].result == [None, 20, 30]


async def test_an_item_condition_that_fails_for_an_item_fails_it_at_expansion_and_stops_a_strict_map() -> None:
    broken = task("m", params={"x": "${item}"}, for_each=ForEach(source=[{"v": 1}, 2, {"v": 3}]),
                  when=Condition("item.v > 0"))
    ran = await run([broken], times_ten)
    assert ran.started == [] and ran.tasks["m[0]"].status is TaskStatus.SKIPPED
    assert ran.tasks["m[1]"].status is TaskStatus.FAILED and "when: " in ran.tasks["m[1]"].error
    assert ran.tasks["m"].status is TaskStatus.FAILED
    assert ran.tasks["m"].error.startswith("1 of 3 items failed (on_item_failure: fail); first: item 1: ")


async def test_a_big_item_result_is_in_the_map_s_result_whole() -> None:
    big = "x" * (INLINE_RESULT_BYTES + 10)

    def handler(call: ScriptedCall) -> Any:
        if call.task.key == "sum":
            return [len(v) for v in call.params["all"]]
        return big if call.params["x"] == 1 else "small"

    ran = await run([mapped("m", source=[1, 2]), task("sum", "m", params={"all": "${m.result}"})], handler)
    assert ran.tasks["m[0]"].result_blob is not None and ran.tasks["sum"].result == [len(big), 5]


async def test_a_map_without_max_parallel_runs_all_its_items_at_once_also_when_resumed() -> None:
    async def handler(call: ScriptedCall) -> Any:
        await anyio.sleep(0.001)
        return call.params["x"]

    spec = mapped("m", source=[1, 2, 3])
    for edit in (None, lambda r, recs: items(r, recs, spec, [(TaskStatus.PENDING, None)] * 3)):
        ran = await run([spec], handler, options=RunOptions(max_concurrent=10), edit=edit)
        assert ran.seen.peak_running(lambda k: k.startswith("m[")) == 3 and ran.tasks["m"].result == [1, 2, 3]


async def test_a_map_of_more_than_256_items_completes() -> None:
    # (CPython shares the int objects up to 256: a count compared by identity would hold below.)
    ran = await run([mapped("m", source=list(range(300)))], times_ten, options=RunOptions(max_concurrent=50))
    assert ran.tasks["m"].status is TaskStatus.COMPLETED and ran.tasks["m"].result == [10 * i for i in range(300)]


async def test_a_map_that_tolerates_its_failures_completes_with_a_cancelled_item_among_them() -> None:
    ran = await run([mapped("m", source=[1, "bad", "stop"], on_failure=CONTINUE)], times_ten)
    assert ran.tasks["m"].status is TaskStatus.COMPLETED and ran.tasks["m"].result == [10, None, None]


# -- the rest of fanout.py (docs/testing.md, `scheduler_fanout_rest`) -------------------------
async def test_a_resumed_map_s_retrying_items_keep_their_slots_and_run_before_the_items_that_waited() -> None:
    spec = mapped("m", source=[1, 2, 3, 4], max_parallel=2)
    before = [(TaskStatus.PENDING, None), (TaskStatus.RETRYING, None), (TaskStatus.RETRYING, None),
              (TaskStatus.PENDING, None)]
    ran = await run([spec], times_ten, edit=lambda r, recs: items(r, recs, spec, before),
                    options=RunOptions(max_concurrent=10))
    assert sorted(ran.started[:2]) == ["m[1]", "m[2]"] and sorted(ran.started[2:]) == ["m[0]", "m[3]"]
    assert ran.seen.peak_running(lambda k: k.startswith("m[")) == 2
    assert ran.tasks["m"].result == [10, 20, 30, 40]


async def test_a_resumed_map_stored_running_is_not_written_running_again() -> None:
    spec = mapped("m", source=[1, 2])
    ran = await run([spec], times_ten,
                    edit=lambda r, recs: items(r, recs, spec, [(TaskStatus.COMPLETED, "a"), (TaskStatus.PENDING, None)]))
    assert [st for key, st, *_ in ran.seen.tasks if key == "m"] == [TaskStatus.COMPLETED]
    assert ran.tasks["m"].result == ["a", 20]


async def test_a_map_item_reads_a_big_result_of_another_task_next_to_its_item() -> None:
    big = "x" * (INLINE_RESULT_BYTES + 10)

    def handler(call: ScriptedCall) -> Any:
        return big if call.task.key == "src" else f"{call.params['x']}:{len(call.params['big'])}"

    ran = await run([task("src"), task("m", "src", params={"x": "${item}", "big": "${src.result}"},
                                       for_each=ForEach(source=[1, 2]))], handler)
    assert ran.tasks["src"].result_blob is not None
    assert ran.tasks["m"].result == [f"1:{len(big)}", f"2:{len(big)}"]


async def test_items_of_a_literal_list_of_strings_are_cached_by_their_value_not_as_files(tmp_path: Path) -> None:
    wf = Workflow(id="wf", name="wf", base_dir=str(tmp_path),
                  tasks=(task("m", params={"x": "${item}"}, for_each=ForEach(source=["a", "b"]), cache=CacheSpec()),
                         task("plain", params={"x": "p"}, cache=CacheSpec())))
    store = InMemoryBackend()
    await store.open()

    async def again() -> list[str]:
        cache = ResultCache(store, wf, {"t/run": {}}, {"t/v1": {"name": "scripted", "version": "1"}})
        ran = await run(wf, lambda call: call.params["x"], store=store, options=RunOptions(cache=cache))
        assert ran.tasks["m"].result == ["a", "b"] and ran.final.status is RunStatus.COMPLETED
        return sorted(ran.started)

    assert await again() == ["m[0]", "m[1]", "plain"]
    assert await again() == []


async def test_a_map_with_some_items_decided_at_expansion_shows_every_item_and_completes() -> None:
    spec = task("m", params={"x": "${item}"}, for_each=ForEach(source=[1, 2, 3, 4, 5, 6], max_parallel=2),
                when=Condition("item > 1"))
    ran = await run([spec], times_ten)
    first: dict[str, TaskStatus] = {}
    for key, st, *_ in ran.seen.tasks:
        first.setdefault(key, st)
    assert first == {"m": TaskStatus.RUNNING, "m[0]": TaskStatus.SKIPPED, "m[1]": TaskStatus.QUEUED,
                     "m[2]": TaskStatus.QUEUED, **{f"m[{i}]": TaskStatus.PENDING for i in (3, 4, 5)}}
    assert sorted(ran.started) == [f"m[{i}]" for i in range(1, 6)]
    assert ran.final.status is RunStatus.COMPLETED and ran.tasks["m"].result == [None, 20, 30, 40, 50, 60]


async def test_a_map_of_more_than_256_items_all_decided_at_once_completes_also_when_resumed() -> None:
    # (a count compared by identity would hold only up to 256, see above)
    none = task("m", params={"x": "${item}"}, for_each=ForEach(source=list(range(300))), when=Condition("item > 1000"))
    ran = await run([none], times_ten)
    assert ran.tasks["m"].status is TaskStatus.COMPLETED and ran.tasks["m"].result == [None] * 300
    spec = mapped("m", source=list(range(300)))
    resumed = await run([spec], times_ten,
                        edit=lambda r, recs: items(r, recs, spec, [(TaskStatus.COMPLETED, "a")] * 300))
    assert resumed.started == [] and resumed.tasks["m"].result == ["a"] * 300
