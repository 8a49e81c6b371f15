"""Prints a banner to stdout before serving: non-JSON on the wire."""

from _demo import provider

print("demo provider 1.2.3 starting...")
provider.run()
