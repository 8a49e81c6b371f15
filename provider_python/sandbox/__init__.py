"""Isolation machinery for `python/execute`: one sandboxed process per execution.

`provider_python.sandbox.host.Sandbox` is the async entry point the provider uses; the modules it
starts in other processes (forkserver, supervisor, child) import only the standard library and
each other, so this package stays cheap to import in the fork server. Layout:

    policy     what to run and under which rules (plain data)
    host       Sandbox: fork server ownership, launch, output cap, timeout (provider side, anyio)
    forkserver warm template, pool of prepared slots
    supervisor per-execution keeper: namespaces, fork, wait/kill, report
    child      the sandboxed process: confinement, then execute
    execute    running the user's code, the result record, traceback filtering
    rootfs, landlock, seccomp, limits, syscalls, probe, template, output, workspace
"""

from provider_python.sandbox.policy import ExecRequest, ExecResult, SandboxPolicy

__all__ = ("ExecRequest", "ExecResult", "SandboxPolicy")
