"""The predecessor's workflow format runs as written: one workflow per form (written here, in
that format), through the real `gleitzeit` executable, with the fake Ollama server answering."""

from __future__ import annotations

import base64
import json
import textwrap
from datetime import datetime
from pathlib import Path

from fake_ollama import FakeOllama, Reply
from tests.helpers.cli import Result, gz


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def run(home: Path, fake: FakeOllama, wf: Path, *args: str, cwd: Path) -> Result:
    return gz(home, *args, "run", str(wf.relative_to(cwd)), "--backend", "memory", "--json",
              cwd=cwd, GLEITZEIT_OLLAMA_URL=fake.url)


def lines(text: str, fragment: str) -> list[str]:
    return [line for line in text.splitlines() if fragment in line]


def test_tasks_without_name_are_named_by_their_id(home: Path, work: Path, fake: FakeOllama) -> None:
    fake.script(Reply(text="Tides"))
    wf = write(work / "ids.yaml", """\
        name: "Named by id"
        tasks:
          - id: "pick_topic"
            method: "llm/chat"
            priority: 3
            parameters:
              model: "llama3.2"
              messages: [{role: user, content: "A topic, one word."}]
          - id: "shout"
            method: "python/execute"
            priority: 1
            dependencies: ["pick_topic"]
            parameters:
              code: "result = 'ok'"
        """)
    res = run(home, fake, wf, cwd=work)
    assert res.code == 0, res.err
    out = res.json()
    assert out["status"] == "completed"
    assert list(out["tasks"]) == ["pick_topic", "shout"]


def test_references_without_result_read_the_result_object(home: Path, work: Path, fake: FakeOllama) -> None:
    fake.script(Reply(text="Blue"), Reply(text="done"))
    wf = write(work / "refs.yaml", """\
        name: "Old references"
        tasks:
          - id: ask
            method: llm/chat
            parameters: {model: llama3.2, prompt: "A colour?"}
          - id: count
            method: python/execute
            parameters:
              code: "print('seven'); result = {'numbers': [3, 4], 'n': 2}"
          - id: tell
            method: llm/chat
            dependencies: [ask, count]
            parameters:
              model: llama3.2
              messages:
                - role: user
                  content: "${ask.response} | ${count.output} | ${count.result.n}"
          - id: gather
            method: python/execute
            dependencies: [count]
            parameters:
              context:
                numbers: "${count.result.numbers}"
                seed_form: "${count.result.result}"
                bare: "${count}"
                whole: "${count.result}"
              code: "result = context"
        """)
    res = run(home, fake, wf, "-v", cwd=work)
    assert res.code == 0, res.err
    tasks = res.json()["tasks"]
    assert fake.bodies("/api/chat")[-1]["messages"][-1]["content"] == "Blue | seven\n | 2"
    gathered = tasks["gather"]["result"]["result"]
    assert set(gathered.pop("whole")) == {"result", "stdout", "stderr", "duration_ms"}  # one meaning, warned
    assert gathered == {
        "numbers": [3, 4],                           # ${count.result.numbers}: the script's result, as before
        "seed_form": {"numbers": [3, 4], "n": 2},    # ${Task.result.result} keeps its meaning
        "bare": {"numbers": [3, 4], "n": 2},         # ${count}: the predecessor's default path
    }
    hints = lines(res.err, "references in the predecessor's form")
    assert len(hints) == 1 and "refs.yaml:17:" in hints[0] and "(4 more like it in this file)" in hints[0]
    quiet = run(home, fake, wf, cwd=work)
    assert quiet.code == 0 and not lines(quiet.err, "predecessor's form")  # the hint is for -v
    assert [w.split(": ", 2)[1] for w in lines(quiet.err, "WARNING")] == ["refs.yaml:26:16"]
    assert "write ${count.result.result}" in quiet.err


def test_batch_workflow_is_a_map_over_the_files_sorted_with_top_level_files(
        home: Path, work: Path, fake: FakeOllama) -> None:
    for name, text in (("b.txt", "bee"), ("a.txt", "ay"), ("deep/c.txt", "sea"), ("skip.md", "no")):
        write(work / "proj" / "docs" / name, text)
    write(work / "proj" / "scripts" / "show.py", "result = {'path': context['file_path'], 'seen': sorted(context)}\n")
    py = write(work / "proj" / "batch_py.yaml", """\
        name: "Python batch"
        type: batch
        protocol: python/v1
        batch:
          directory: docs
          pattern: "**/*.txt"
        template:
          method: python/execute
          file: scripts/show.py
          priority: high
          timeout: 30
          context: {kind: text}
        """)
    res = run(home, fake, py, cwd=work)
    assert res.code == 0, res.err
    tasks = res.json()["tasks"]
    assert list(tasks) == ["Process files"], tasks  # one for_each task over {glob: docs/**/*.txt}
    assert tasks["Process files"]["status"] == "completed", tasks
    assert [t["result"] for t in tasks["Process files"]["result"]] == [
        {"path": "docs/a.txt", "seen": ["file_path", "kind"]},  # priority/timeout went to the task
        {"path": "docs/b.txt", "seen": ["file_path", "kind"]},
        {"path": "docs/deep/c.txt", "seen": ["file_path", "kind"]},
    ]
    llm = write(work / "proj" / "batch_llm.yaml", """\
        name: "LLM batch"
        type: "batch"
        batch: {directory: "proj/docs", pattern: "*.txt"}
        template:
          method: "llm/chat"
          model: "llama3.2:latest"
          messages: [{role: user, content: "Summarise."}]
        """)
    res = run(home, fake, llm, cwd=work)  # directory given from the current directory, predecessor style
    assert res.code == 0, res.err
    assert [len(t["result"]) for t in res.json()["tasks"].values()] == [2]
    prompts = [b["messages"][-1]["content"] for b in fake.bodies("/api/chat")]
    assert prompts == [f"Summarise.\n\nFile content from {work}/proj/docs/a.txt:\nay",
                       f"Summarise.\n\nFile content from {work}/proj/docs/b.txt:\nbee"]


def test_relative_paths_try_the_workflow_folder_then_the_current_directory(
        home: Path, work: Path, fake: FakeOllama) -> None:
    write(work / "proj" / "notes" / "n.txt", "the notes")
    wf = write(work / "proj" / "paths.yaml", """\
        name: "Paths"
        tasks:
          - name: from_cwd
            method: llm/chat
            params: {model: llama3.2, prompt: "A:", file_path: "proj/notes/n.txt"}
          - name: from_folder
            method: llm/chat
            params: {model: llama3.2, prompt: "B:", file_path: "notes/n.txt"}
        """)
    res = run(home, fake, wf, "-v", cwd=work)
    assert res.code == 0, res.err
    assert [b["messages"][-1]["content"].endswith(f"{work}/proj/notes/n.txt:\nthe notes")
            for b in fake.bodies("/api/chat")] == [True, True]
    said = lines(res.err, "gleitzeit.workflow")
    assert any("paths.yaml:5:" in s and "found relative to the current directory" in s
               and "read as 'notes/n.txt'" in s for s in said), said
    assert any("paths.yaml:8:" in s and "found in the workflow folder" in s for s in said), said

    write(work / "secret.txt", "not for the run")
    escape = write(work / "proj" / "escape.yaml", """\
        name: "Escape"
        tasks:
          - name: peek
            method: llm/chat
            params: {model: llama3.2, prompt: "C:", file_path: "secret.txt"}
        """)
    before = len(fake.requests)
    res = run(home, fake, escape, cwd=work)
    assert res.code == 2
    assert lines(res.err, "error:") == [
        f"error: proj/escape.yaml:5:56: file_path 'secret.txt' is not in the workflow folder {work}/proj; it is in "
        f"the current directory {work}, outside the folder a run may read: move it into the workflow folder or "
        f"give a path relative to that folder"]
    assert len(fake.requests) == before  # nothing was read or sent


def test_vision_image_paths_go_in_one_call_and_batch_mode_warns(home: Path, work: Path, fake: FakeOllama) -> None:
    red, blue = b"\x89PNG red", b"\x89PNG blue"
    (work / "img").mkdir()
    (work / "img" / "red.png").write_bytes(red)
    (work / "img" / "blue.png").write_bytes(blue)
    write(work / "one.txt", "first")
    write(work / "two.txt", "second")
    wf = write(work / "vision.yaml", """\
        name: "Several images"
        tasks:
          - name: look
            protocol: llm/v1
            method: llm/vision
            params:
              model: llava:latest
              image_paths: ["img/red.png", "img/blue.png"]
              batch_mode: true
              messages: [{role: user, content: "Describe."}]
          - name: read
            method: llm/chat
            params:
              model: llama3.2
              files: ["one.txt", "two.txt"]
              batch_mode: true
              messages: [{role: user, content: "Topics?"}]
        """)
    res = run(home, fake, wf, cwd=work)
    assert res.code == 0, res.err
    vision, chat = fake.bodies("/api/chat")
    assert vision["messages"][-1]["images"] == [base64.b64encode(red).decode(), base64.b64encode(blue).decode()]
    assert chat["messages"][-1]["content"] == (f"Topics?\n\nFile content from {work}/one.txt:\nfirst"
                                               f"\n\nFile content from {work}/two.txt:\nsecond")
    warned = lines(res.err, "batch_mode")
    assert len(warned) == 1 and "vision.yaml:9:" in warned[0] and "(1 more like it in this file)" in warned[0]


def test_stub_tools_fail_with_one_line_pointing_at_mcp(home: Path, work: Path, fake: FakeOllama) -> None:
    wf = write(work / "stubs.yaml", """\
        name: "Stubs"
        tasks:
          - id: hello
            method: mcp/tool.echo
            parameters: {message: hi}
          - id: sum
            method: mcp/tool.add
            parameters: {a: 1, b: 2}
          - id: again
            protocol: echo/v1
            method: echo
            dependencies: [hello]
            params: {message: "${hello.response}"}
        """)
    res = run(home, fake, wf, cwd=work)
    assert res.code == 2
    assert lines(res.err, "error:") == [
        "error: stubs.yaml:3:5: tasks 'hello', 'sum', 'again': echo/echo, mcp/tool.add, mcp/tool.echo were the "
        "predecessor's built-in stub tools, with no server behind them; Gleitzeit has none: register a real MCP "
        "server as a provider and call its tools as <name>/<tool> (docs/migrating.md, 'Stub tools')"]
    assert "Traceback" not in res.err


def test_ignored_keys_warn_once_and_max_parallel_tasks_is_honoured(home: Path, work: Path) -> None:
    nap = "import time; time.sleep(0.3); result = 1"
    wf = write(work / "keys.yaml", f"""\
        name: "Predecessor keys"
        version: "1.0"
        tags: [demo]
        metadata: {{owner: me}}
        wait_for_completion: true
        max_parallel_tasks: 1
        tasks:
          - {{id: a, method: python/execute, tags: [x], parameters: {{code: "{nap}"}}}}
          - {{id: b, method: python/execute, metadata: {{k: v}}, parameters: {{code: "{nap}"}}}}
          - {{id: c, method: python/execute, parameters: {{code: "{nap}"}}}}
        """)
    res = gz(home, "workflow", "submit", wf.name, cwd=work, GLEITZEIT_PERSISTENCE_BACKEND="sqlite")
    assert res.code == 0, res.err
    assert lines(res.err, "WARNING") == [
        "WARNING gleitzeit.workflow: keys.yaml:2:1: keys of the predecessor's format that have no effect here, "
        "ignored: version, tags, metadata, task 'a': tags, task 'b': metadata (docs/migrating.md)"]
    run_id = res.out.splitlines()[0]
    status = gz(home, "workflow", "status", run_id, "--json", cwd=work, GLEITZEIT_PERSISTENCE_BACKEND="sqlite").json()
    spans = sorted((datetime.fromisoformat(t["started_at"]), datetime.fromisoformat(t["finished_at"]))
                   for t in status["tasks"])
    assert len(spans) == 3 and all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), spans


def test_batch_never_reaches_outside_the_workflow_folder(home: Path, work: Path, fake: FakeOllama) -> None:
    write(work / "private.txt", "host secret")
    write(work / "proj" / "docs" / "ok.txt", "fine")
    (work / "proj" / "docs" / "leak.txt").symlink_to(work / "private.txt")
    wf = write(work / "proj" / "batch.yaml", """\
        name: "Batch"
        type: batch
        batch: {directory: docs, pattern: "*.txt"}
        template: {method: llm/chat, prompt: "Read."}
        """)
    res = run(home, fake, wf, cwd=work)
    assert res.code == 0, res.err
    assert [len(t["result"]) for t in res.json()["tasks"].values()] == [1]  # ok.txt alone
    assert [w.split(": ", 2)[1:] for w in lines(res.err, "WARNING")] == [
        ["proj/batch.yaml:3:20", "batch: 1 matching file(s) lead outside the workflow folder (symbolic links) "
                                 "and were left out"]]
    assert "host secret" not in json.dumps([r.body for r in fake.requests])

    up = write(work / "proj" / "up.yaml", """\
        name: "Up"
        type: batch
        batch: {directory: docs, pattern: "../../*.txt"}
        template: {method: llm/chat, prompt: "Read."}
        """)
    res = run(home, fake, up, cwd=work)
    assert res.code == 2 and lines(res.err, "error:") == [
        "error: proj/up.yaml:3:35: batch: 'pattern' must be a file pattern inside the directory, such as '*.txt', "
        "not '../../*.txt'"]
