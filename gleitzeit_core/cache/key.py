"""The cache key: SHA-256 of a versioned, canonical JSON document of everything that
can change a task's result. Pure: callers gather the parts (``cache/lookup.py``).

Left out on purpose: run id, attempt, task name, priority, timeout, retry policy,
file modification times. Secrets appear by name only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: bump when the document's shape or meaning changes: every old entry then misses
KEY_VERSION = 1


def canonical(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor_digest(descriptor: Mapping[str, Any]) -> str:
    """The method descriptor as the provider announced it (schemas, hints): a provider that
    changes what a method accepts or returns changes the key even under the same version."""
    return sha256(canonical(dict(descriptor)))


def key_document(*, method: str, params: Any, provider: Mapping[str, Any], descriptor: str,
                 sandbox: Any, files: Mapping[str, Any], extra: Any, secrets: list[str]) -> dict[str, Any]:
    """Upstream results enter through ``params`` (after substitution) and only as far as the
    task references them: a dependency re-run with the same value keeps the key."""
    return {"v": KEY_VERSION, "method": method, "params": params, "provider": dict(provider),
            "descriptor": descriptor, "sandbox": sandbox, "files": dict(files), "extra": extra,
            "secrets": sorted(secrets)}


def key_of(document: Mapping[str, Any]) -> str:
    return sha256(canonical(dict(document)))


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths (``params.code``, ``files.data/a.csv``) where two key documents differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in old:
                out.append(f"{sub} (new)")
            elif k not in new:
                out.append(f"{sub} (gone)")
            else:
                out.extend(differences(old[k], new[k], sub))
        return out
    return [] if canonical(old) == canonical(new) else [path or "(document)"]
