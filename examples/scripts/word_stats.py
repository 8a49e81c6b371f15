"""Counts words in context["text"]; returns the total and the most common ones.

Run by examples/file_context.yaml: the Python provider provides the global
`context` (a dict) and takes the value of the global `result`.
"""

from collections import Counter

words = context["text"].split()  # noqa: F821 - `context` is provided by the provider
top = context.get("top", 5)  # noqa: F821
result = {
    "total": len(words),
    "distinct": len(set(words)),
    "top": [[word, count] for word, count in Counter(words).most_common(top)],
}
print(f"{result['total']} words")
