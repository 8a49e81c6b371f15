"""The protocol's JSON Schemas (sdk/schema/*.json), and which one a given wire message must match."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: SCHEMA_DIR alone (the host's manifests) needs no jsonschema
    from jsonschema import Draft202012Validator
    from referencing import Registry

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"  # sdk/schema links here
BASE_URI = "https://gleitzeit.dev/schema/protocol/v1/"

# Result schema per built-in method; task methods are checked against their own resultSchema.
RESULT_SCHEMAS = {
    "initialize": "initialize-result.json",
    "ping": "ping-result.json",
    "health": "health-result.json",
    "shutdown": "shutdown-result.json",
}
NOTIFICATION_SCHEMAS = {"$/progress": "progress.json", "$/output": "output.json", "$/log": "log.json"}


class ProtocolSchemas:
    """Compiled validators for every schema file, built once per instance."""

    def __init__(self, directory: Path = SCHEMA_DIR):
        self._docs = {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}
        if not self._docs:
            raise FileNotFoundError(f"no protocol schemas in {directory}")

    @property
    def names(self) -> list[str]:
        return list(self._docs)

    @cached_property
    def _registry(self) -> Registry:
        from referencing import Registry, Resource

        return Registry().with_resources((BASE_URI + name, Resource.from_contents(doc)) for name, doc in self._docs.items())

    @cached_property
    def _validators(self) -> dict[str, Draft202012Validator]:
        from jsonschema import Draft202012Validator

        return {name: Draft202012Validator(doc, registry=self._registry) for name, doc in self._docs.items()}

    def errors(self, name: str, instance: Any) -> list[str]:
        """Readable violations of schema ``name`` (empty if valid)."""
        return [_describe(e) for e in self._validators[name].iter_errors(instance)]

    def check_outgoing(self, msg: Any, request_method: str | None = None) -> list[str]:
        """Violations of a provider-to-host message; ``request_method`` is what a response answers."""
        if not isinstance(msg, dict):
            return ["not a JSON object"]
        if "method" in msg:
            name = NOTIFICATION_SCHEMAS.get(msg["method"], "notification.json")
            return [f"{name}: {e}" for e in self.errors(name, msg)]
        if "error" in msg:
            return [f"error-response.json: {e}" for e in self.errors("error-response.json", msg)]
        problems = [f"response.json: {e}" for e in self.errors("response.json", msg)]
        result_schema = RESULT_SCHEMAS.get(request_method or "")
        if result_schema and not problems:
            problems += [f"{result_schema}: {e}" for e in self.errors(result_schema, msg["result"])]
        return problems


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"at /{where}: {error.message}" if where else error.message
