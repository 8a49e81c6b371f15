"""The console every command prints through. In a terminal it is rich's; when
stdout is a pipe or a file, nothing is wrapped at 80 columns and a table becomes
its title, a header line and one tab-separated line per row, so
`gleitzeit config | grep max_concurrent_tasks` finds the key with its value and
`cut -f2` picks a column."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text


class CliConsole(Console):
    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 — rich's name
        if self.is_terminal:
            super().print(*objects, **kwargs)
            return
        kwargs["soft_wrap"] = True
        for obj in objects:
            if isinstance(obj, Table):
                # written as is: rich would expand the tabs to spaces
                self.file.write("".join(line + "\n" for line in self.table_lines(obj)))
            else:
                super().print(obj, **kwargs)

    def table_lines(self, table: Table) -> list[str]:
        """The table as plain lines: title (if any), headers, then each row; tabs between cells."""
        lines = [self.plain(table.title)] if table.title else []
        if table.show_header:
            lines.append("\t".join(self.plain(c.header) for c in table.columns))
        columns = [list(c.cells) for c in table.columns]
        lines.extend("\t".join(self.plain(col[i]) for col in columns) for i in range(table.row_count))
        return lines

    def plain(self, cell: RenderableType | None) -> str:
        """One cell's text on one line (tabs and newlines become spaces)."""
        if cell is None:
            return ""
        if isinstance(cell, str):
            text = Text.from_markup(cell).plain
        elif isinstance(cell, Text):
            text = cell.plain
        else:  # any other renderable: render it without a width limit
            buffer = io.StringIO()
            Console(file=buffer, width=10_000, no_color=True).print(cell)
            text = buffer.getvalue()
        return " ".join(text.replace("\t", " ").split("\n")).strip()
