"""Import the working demo provider, for broken variants that each break one rule of the protocol."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_provider import provider  # noqa: E402

__all__ = ("provider",)
