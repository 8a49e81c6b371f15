"""The cache as the scheduler uses it: does a task take part, what is its key, is there
a live entry, and keeping a successful result.

Fail closed: when any part of the key cannot be computed (a file the task could not
read, a provider without a version, a reference that does not resolve) the task runs
uncached and the reason is logged (``gleitzeit run --verbose`` shows it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gleitzeit_core.cache import files, key
from gleitzeit_core.cache.entries import UNBOUNDED, CacheBound, CacheEntry, CacheTable, blob_space, table_for
from gleitzeit_core.workflow.cache_spec import CacheSpec, effective
from gleitzeit_core.results import INLINE_RESULT_BYTES, encode
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.blobs import digest
from gleitzeit_core.store.records import TaskRecord, now
from gleitzeit_core.workflow.model import TaskSpec, Workflow

log = logging.getLogger("gleitzeit.cache")
_SECRET = re.compile(r"\$\{\s*secrets\.([^}\s]+)\s*\}")


class CacheMode(str, Enum):
    USE = "use"  # read and write (the default)
    OFF = "off"  # `--no-cache`: read nothing, write nothing
    REFRESH = "refresh"  # `--refresh-cache`: read nothing, write (replace) every result


@dataclass(frozen=True)
class Decision:
    """One task's cache lookup: its key (None when not cached, with ``reason``) and the hit."""

    key: str | None = None
    document: dict[str, Any] | None = None
    spec: CacheSpec | None = None
    reason: str | None = None
    hit: CacheEntry | None = None


def secret_names(value: Any) -> list[str]:
    """Names of the ``${secrets.NAME}`` a task's parameters use (their values never enter a key)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            found.update(_SECRET.findall(v))
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return sorted(found)


class ResultCache:
    """Per run: the workflow, the methods' descriptors and who provides them, the mode, the bound."""

    def __init__(self, store: Store, workflow: Workflow, methods: Mapping[str, Mapping[str, Any]],
                 providers: Mapping[str, Mapping[str, Any] | None], *, mode: CacheMode = CacheMode.USE,
                 private: Sequence[str] = (), bound: CacheBound = UNBOUNDED):
        self.store = store
        self.table: CacheTable = table_for(store)
        self.wf = workflow
        self.methods = methods
        self.providers = providers  # protocol → {"name", "version"} from the provider's handshake
        self.mode = mode
        self.private = tuple(private)
        self.bound = bound

    def wanted(self, spec: TaskSpec) -> tuple[CacheSpec | None, str | None]:
        """The cache block that applies to ``spec``, or None with why not (None: not asked)."""
        if self.mode is CacheMode.OFF:
            return None, None
        block, own = effective(spec.cache, self.wf.cache)
        if block is None:
            return None, None
        cacheable = self.methods.get(spec.method, {}).get("cacheable", True)
        if cacheable is False:
            return None, f"{spec.method} is not cacheable (its provider says so)"
        if cacheable == "task" and not own:
            return None, (f"{spec.method} is cached only when the task itself says 'cache:' "
                          "(the workflow's default does not cover it)")
        return block, None

    def decide(self, spec: TaskSpec, params: Mapping[str, Any], extra: Any,
               item_files: Sequence[str] = ()) -> Decision:
        """The key of one attempt-to-be: ``params`` after substitution (``sandbox`` included, as sent),
        ``extra`` the substituted ``key_extra``, ``item_files`` the files a map item is (their
        contents enter the key: the same path with new contents is a new key)."""
        block, reason = self.wanted(spec)
        if block is None:
            return Decision(reason=reason)
        try:
            document = self._document(spec, block, params, extra, item_files)
        except files.NotCacheable as exc:
            return Decision(spec=block, reason=str(exc))
        return Decision(key=key.key_of(document), document=document, spec=block)

    def _document(self, spec: TaskSpec, block: CacheSpec, params: Mapping[str, Any], extra: Any,
                  item_files: Sequence[str]) -> dict[str, Any]:
        descriptor = self.methods.get(spec.method)
        if descriptor is None:
            raise files.NotCacheable(f"no descriptor for {spec.method}")
        provider = self.providers.get(spec.protocol)
        if not provider or not provider.get("name") or not provider.get("version"):
            raise files.NotCacheable(f"the provider of {spec.protocol} announced no name and version")
        sandbox = params.get("sandbox")
        plain = {k: v for k, v in params.items() if k != "sandbox"}
        roots = files.roots_for(self.wf.base_dir, sandbox if isinstance(sandbox, dict) else None, self.private)
        read = files.file_digests(plain, list(descriptor.get("fileParams") or ()), block.files, roots,
                                  item_files)
        document = key.key_document(
            method=spec.method, params=plain,
            provider={"name": provider["name"], "version": provider["version"]},
            descriptor=key.descriptor_digest(descriptor), sandbox=sandbox, files=read,
            extra=extra, secrets=secret_names([spec.params, spec.sandbox, self.wf.sandbox, block.key_extra]))
        try:
            key.canonical(document)
        except (TypeError, ValueError) as exc:
            raise files.NotCacheable(f"the parameters have no canonical JSON form: {exc}") from None
        return document

    async def lookup(self, decision: Decision) -> CacheEntry | None:
        if decision.key is None or self.mode is not CacheMode.USE:
            return None
        entry = await self.table.get(decision.key)
        if entry is not None:
            await self.table.record_hit(entry.key, now())
        return entry

    async def value(self, entry: CacheEntry) -> Any:
        """The cached result itself (loaded from blob storage when big)."""
        if entry.result_blob is None:
            return entry.result
        data = await self.store.get_blob(blob_space(entry.key), entry.result_blob)
        if data is None:
            raise files.NotCacheable(f"the cached result {entry.result_blob} is missing from blob storage")
        return json.loads(data)

    async def remember(self, decision: Decision, spec: TaskSpec, rec: TaskRecord, value: Any) -> None:
        """Keep a successful result under the decision's key (never on --no-cache)."""
        if decision.key is None or decision.document is None or self.mode is CacheMode.OFF:
            return
        data = encode(value)
        if 0 < self.bound.max_bytes < len(data):  # it would evict everything, itself included
            log.info("task %r: result not cached: %d bytes, over cache.max_mb", spec.name, len(data))
            return
        created = now()
        ttl = decision.spec.ttl if decision.spec else None
        entry = CacheEntry(key=decision.key, method=spec.method, workflow_name=self.wf.name, task_key=spec.key,
                           task_name=spec.name, source_run_id=rec.run_id, source_task_id=rec.id,
                           key_doc=decision.document, created_at=created,
                           expires_at=None if ttl is None else created + ttl, size=len(data))
        if len(data) > INLINE_RESULT_BYTES:
            entry.result_blob = digest(data)
            await self.store.put_blob(blob_space(entry.key), entry.result_blob, data)
        else:
            entry.result = value
        evicted = await self.table.put(entry, self.bound)
        log.info("task %r: result cached under %s%s", spec.name, decision.key,
                 f" ({evicted} least recently used evicted)" if evicted else "")
