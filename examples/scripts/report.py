"""Formats the word statistics of the previous task as text lines.

`context["stats"]` arrives as a dict: a whole-value ${...} keeps its type.
"""

stats = context["stats"]  # noqa: F821 - `context` is provided by the provider
lines = [context["title"], f"{stats['total']} words, {stats['distinct']} distinct"]  # noqa: F821
lines += [f"  {word}: {count}" for word, count in stats["top"]]
result = "\n".join(lines)
print(result)
