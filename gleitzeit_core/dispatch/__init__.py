"""Where a run's attempts go: the ``Dispatcher`` port (``base.py``) and its adapters.

``local.py`` (provider processes on this machine), ``redis.py`` (a pool of
`gleitzeit worker` processes through Redis Streams), ``scripted.py`` (in memory,
for tests, public as ``gleitzeit_core.ScriptedDispatcher``); ``factory.py`` picks
one from the configuration. The adapters load on use: each pulls in its own stack.
"""

from gleitzeit_core.dispatch.base import Dispatcher as Dispatcher

__all__ = ("Dispatcher",)
