"""OpenTelemetry traces of runs: one trace per run, a span per task and per attempt.

``context`` (ids, the switch) has no dependencies and is what the engine
imports on every run; ``spans`` and ``export`` import the OpenTelemetry SDK and
are loaded only when tracing is on (``gleitzeit[otel]``).
"""
