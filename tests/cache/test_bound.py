"""The cache's bound through the real `gleitzeit` executable: over cache.max_entries a write evicts
the least recently used entry (not the oldest), and `gleitzeit cache list` shows the size and the
evictions. What ran is judged by the tasks' side-effect markers."""

from __future__ import annotations

import json

from tests.cache.conftest import Folder, cached, python_task, workflow

BOUND = {"GLEITZEIT_CACHE_MAX_ENTRIES": "2"}


def test_over_max_entries_the_least_recently_used_entry_is_evicted_and_cache_list_says_so(folder: Folder):
    out = folder.out

    def run(name: str) -> bool:
        """Run the one-task workflow ``name``; whether it was served from the cache."""
        wf = workflow(folder, [python_task(name, out, "1")], name=name)
        return cached(folder.run(wf, **BOUND))[name]

    assert [run("A"), run("B")] == [False, False]
    assert run("A") is True  # A, made first, is now used more recently than B
    assert run("C") is False  # the third entry: B goes
    assert folder.marks() == ["A", "B", "C"]
    listing = folder.gz("cache", "list", "--json", **BOUND)
    assert listing.code == 0, listing.err
    doc = json.loads(listing.out)
    assert sorted(e["task"] for e in doc["entries"]) == ["A", "C"]
    assert doc["totals"] | {"bytes": 0} == {"entries": 2, "bytes": 0, "evictions": 1, "max_entries": 2,
                                            "max_bytes": 1024 * 1024 * 1024}
    assert doc["totals"]["bytes"] == sum(e["size"] for e in doc["entries"]) > 0
    human = folder.gz("cache", "list", **BOUND)
    assert "2 entries (of 2), 0.0 MiB of results (of 1024.0 MiB), 1 evicted (least recently used)" in human.out

    assert [run("A"), run("B")] == [True, False]  # B runs again; its write evicts C
    assert folder.marks() == ["A", "B", "B", "C"]
