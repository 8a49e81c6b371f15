"""The implementation of the public Python API; import it from ``gleitzeit_core``."""
