"""The SDK's demo provider (tests/sdk/demo_provider.py) as a provider manifest a workflow can name."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "sdk" / "demo_provider.py"


def demo_manifest(folder: Path) -> Path:
    path = folder / "demo.yaml"
    path.write_text(textwrap.dedent(f"""
        name: demo
        command: "{sys.executable}"
        args: ["{DEMO}"]
        inherit_env: [PATH]
        protocols: [demo/v1]
    """))
    return path
