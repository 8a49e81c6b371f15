"""Cached map items through the real executable: items are keyed one by one, and the item
of a glob map is a file whose *contents* are part of its key. What ran is judged by the
marker file each item leaves (one file per item: parallel items never share one)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cache.conftest import Folder

FILES = 12


def map_workflow(folder: Folder, source: object) -> Path:
    out = folder.out
    code = ("import os, uuid\n"
            "text = open(context['path']).read()\n"
            f"open(os.path.join({str(out)!r}, context['path'].replace('/', '_') + '.' + uuid.uuid4().hex), 'w')"
            ".write(text)\n"
            "result = len(text)\n")
    wf = {"name": "cached-map", "tasks": [
        {"name": "Count", "method": "python/execute", "for_each": source, "cache": True,
         "sandbox": {"write": [str(out)]}, "parameters": {"context": {"path": "${item}"}, "code": code}},
        {"name": "Total", "method": "python/execute", "dependencies": ["Count"],
         "parameters": {"code": "result = sum(${Count.result[*].result})"}},
    ]}
    path = folder.work / "wf.yaml"
    path.write_text(yaml.safe_dump(wf, sort_keys=False))
    return path


def ran(folder: Folder) -> list[str]:
    """The items that executed since the last call (their paths), and forget them."""
    names = sorted(p.name.rsplit(".", 1)[0] for p in folder.out.iterdir())
    for p in folder.out.iterdir():
        p.unlink()
    return [n.replace("_", "/") for n in names]


def test_a_glob_map_reruns_exactly_the_items_whose_file_contents_changed(folder: Folder):
    for i in range(FILES):
        folder.write(f"data/f{i:02}.txt", "x" * i)
    wf = map_workflow(folder, {"glob": "data/*.txt"})
    first = folder.run(wf)
    assert first["tasks"]["Total"]["result"]["result"] == sum(range(FILES))
    assert len(ran(folder)) == FILES

    assert ran(folder) == [] and folder.run(wf)["tasks"]["Total"]["result"]["result"] == sum(range(FILES))
    assert ran(folder) == []  # nothing changed: every item is a hit

    changed = ["data/f03.txt", "data/f07.txt", "data/f10.txt"]
    for rel in changed:  # same paths, same parameters, new contents
        (folder.work / rel).write_text("y" * 100)
    third = folder.run(wf)
    assert ran(folder) == changed
    assert third["tasks"]["Total"]["result"]["result"] == sum(range(FILES)) - 3 - 7 - 10 + 300

    # `cache explain` by name: the newest run's item, or one of a given run
    explained = json.loads(folder.gz("cache", "explain", "Count[3]", "--json").out)
    assert explained["run_id"] == third["run_id"] and explained["hit"] is False
    assert explained["previous"]["differences"] == ["files.item.data/f03.txt"]
    assert list(explained["entry"]["document"]["files"]["item"]) == ["data/f03.txt"]
    assert json.loads(folder.gz("cache", "explain", "Count[4]", "--json").out)["hit"] is True
    older = json.loads(folder.gz("cache", "explain", "Count[3]", "--run", first["run_id"], "--json").out)
    assert older["hit"] is False and older["previous"] is None
    missing = folder.gz("cache", "explain", "Nope")
    assert missing.code != 0 and "no task 'Nope'" in missing.err

    folder.write("data/a-new.txt", "zz")  # a new match sorts first: the others' indexes shift
    fourth = folder.run(wf)
    assert ran(folder) == ["data/a-new.txt"]
    assert fourth["tasks"]["Total"]["result"]["result"] == third["tasks"]["Total"]["result"]["result"] + 2


def test_list_map_items_are_cached_one_by_one(folder: Folder):
    for i in range(4):
        folder.write(f"data/f{i}.txt", "x" * i)
    items = [f"data/f{i}.txt" for i in range(4)]
    wf = map_workflow(folder, items)
    folder.run(wf)
    assert len(ran(folder)) == 4
    wf = map_workflow(folder, items + ["data/f3.txt"])  # one more item, a duplicate path
    folder.run(wf)
    assert ran(folder) == []  # the new item's key equals item 3's: a hit
