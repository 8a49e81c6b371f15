"""A cosmic-ray filter: skip every mutant outside the functions and classes a config names,
or inside the ones it excludes (the rest of a module another config covers).

    [cosmic-ray.filters.function-filter]
    include = ["RunOptions", "Scheduler._start", "Scheduler._retry_timer"]
    # or: exclude = ["RunOptions", "Scheduler._start"]

Names are ``Class``, ``function`` or ``Class.method`` (the whole body, decorators included).
Unlike cosmic-ray's own line filter, the selection survives edits that move the code.
Without the section the filter changes nothing. Usage: filter_functions.py SESSION --config CFG
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from cosmic_ray.config import load_config
from cosmic_ray.tools.filters.line_filter import LineFilter


def spans(source: str, names: list[str]) -> list[tuple[int, int]]:
    """The (first, last) lines of each named definition; a name not found is an error."""
    found: dict[str, tuple[int, int]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + node.name
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                found[name] = (first, node.end_lineno or node.lineno)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name + ".")

    visit(ast.parse(source).body, "")
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"function-filter: not defined in the module: {', '.join(missing)}")
    return [found[n] for n in names]


class FunctionFilter(LineFilter):
    """Skips mutants outside the included or inside the excluded definitions (cosmic-ray's line
    filter does the skipping: it skips what lies outside the spans it is given)."""

    def filter(self, work_db, args):  # type: ignore[no-untyped-def]
        config = load_config(args.config)
        section = config.sub("filters", "function-filter")
        include, exclude = section.get("include"), section.get("exclude")
        if include and exclude:
            raise SystemExit("function-filter: give include or exclude, not both")
        module = Path(config["module-path"])
        source = module.read_text()
        if include:
            kept = spans(source, list(include))
        elif exclude:
            kept = outside(spans(source, list(exclude)), len(source.splitlines()))
        else:
            return
        self._skip_filtered(work_db, {module: kept})


def outside(excluded: list[tuple[int, int]], last_line: int) -> list[tuple[int, int]]:
    """The line spans of a module of ``last_line`` lines that none of ``excluded`` covers."""
    kept: list[tuple[int, int]] = []
    line = 1
    for first, last in sorted(excluded):
        if first > line:
            kept.append((line, first - 1))
        line = max(line, last + 1)
    if line <= last_line:
        kept.append((line, last_line))
    return kept


if __name__ == "__main__":
    sys.exit(FunctionFilter().main())
