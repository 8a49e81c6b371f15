"""`python -m provider_python`: serve python/execute on stdin/stdout."""

import logging

from provider_python.provider import create_provider

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    create_provider().run()
