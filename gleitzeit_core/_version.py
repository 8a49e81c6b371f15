"""The distribution's version, in a module of its own: the modules that report it (the
provider handshake, trace resources, the CLI) import it from here, not from the public
facade ``gleitzeit_core``, which imports them in turn."""

__version__ = "0.5.0"
