"""What a sandboxed child needs prepared *before* fork: compiled seccomp filters, the Landlock ABI,
the shared read-only paths (system, Python installation), and the modules the bootstrap and
typical user code import. Building these per child would cost ~10 ms each time."""

from __future__ import annotations

from dataclasses import dataclass, field

from provider_python.sandbox import landlock, rootfs, seccomp
from provider_python.sandbox.interpreter import TaskPython

# Imported once in the template so user code finds them already loaded (forked children share
# the pages): the stdlib a typical task touches first.
PRELOAD = ("json", "math", "re", "collections", "datetime", "itertools", "functools", "random",
           "statistics", "pathlib", "textwrap", "decimal", "fractions", "string", "csv", "hashlib",
           "base64", "dataclasses", "typing", "copy", "time", "io", "tempfile", "subprocess")


@dataclass
class Template:
    landlock_abi: int
    shared_paths: list[str] = field(default_factory=list)  # read-only for every execution
    sys_path: tuple[str, ...] = ()  # the task interpreter's import path, for user code
    filters: dict[bool, bytes] = field(default_factory=dict)  # network allowed? -> seccomp BPF
    seccomp_error: str = ""

    @classmethod
    def prepare(cls, *, preload: bool = True) -> "Template":
        task = TaskPython.from_env()
        tpl = cls(landlock_abi=landlock.abi_version(), shared_paths=rootfs.shared_paths(task.mounts),
                  sys_path=task.sys_path)
        try:
            tpl.filters = {net: seccomp.compile_bpf(network=net) for net in (False, True)}
        except OSError as exc:
            tpl.seccomp_error = str(exc)
        if preload:
            for name in PRELOAD:
                __import__(name)
        _site_builtins()
        return tpl


def _site_builtins() -> None:
    """exit()/quit()/help() normally come from `site`, which the sandbox's interpreter skips."""
    import site

    site.setquit()
    site.setcopyright()
    site.sethelper()
