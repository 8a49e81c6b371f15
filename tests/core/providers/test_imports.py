"""The host's wire path imports only the SDK's wire modules, never the authoring side.

Checked in a fresh interpreter, because this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

AUTHORING = ("jsonrpcserver", "jsonschema", "referencing", "gleitzeit_sdk.provider", "gleitzeit_sdk.server",
             "gleitzeit_sdk.method")


def loaded_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(m for m in {AUTHORING!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", ["gleitzeit_core.providers.connection", "gleitzeit_core.providers.actor",
                                    "gleitzeit_core.providers.process", "gleitzeit_core.providers.host"])
def test_importing_the_host_side_loads_no_authoring_sdk(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_author_imports_still_come_from_the_package() -> None:
    loaded = loaded_after("from gleitzeit_sdk import Provider, RequestContext, TaskFailed, MethodSpec, Limits, RpcError")
    assert {"gleitzeit_sdk.provider", "gleitzeit_sdk.server", "jsonschema"} <= set(loaded)
    assert "jsonrpcserver" not in loaded  # the SDK dispatches requests itself


def test_the_session_does_not_import_the_registry() -> None:
    """server.Connection reads a ProviderDescription; provider.py imports server.py, not the reverse."""
    assert "gleitzeit_sdk.provider" not in loaded_after("import gleitzeit_sdk.server")
