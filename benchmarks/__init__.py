"""Benchmarks: Gleitzeit's per-task overhead, throughput and scaling, side by side with Prefect and Dask.

``python -m benchmarks [--quick]`` runs every scenario (see ``plan.py``), prints a
table; with ``--save`` it also writes ``benchmarks/results/<date>-<host>.{json,md}``.
"""
