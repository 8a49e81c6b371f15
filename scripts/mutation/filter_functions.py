"""A cosmic-ray filter: skip every mutant outside the functions and classes a config names.

    [cosmic-ray.filters.function-filter]
    include = ["RunOptions", "Scheduler._start", "Scheduler._retry_timer"]

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
    """Skips mutants outside the named definitions (cosmic-ray's line filter does the skipping)."""

    def filter(self, work_db, args):  # type: ignore[no-untyped-def]
        config = load_config(args.config)
        names = config.sub("filters", "function-filter").get("include")
        if not names:
            return
        module = Path(config["module-path"])
        self._skip_filtered(work_db, {module: spans(module.read_text(), list(names))})


if __name__ == "__main__":
    sys.exit(FunctionFilter().main())
