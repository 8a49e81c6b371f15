"""The sandboxed process itself. It is forked by its supervisor *before* its execution arrives,
already inside its new namespaces, and prepares what every execution shares (the root
filesystem's system part, /proc); when the execution arrives it installs its fds, confines itself
layer by layer, runs the code, writes the record on the result channel and exits. In a PID
namespace it is PID 2, its supervisor PID 1, which every orphan it leaves is handed to."""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import socket
import sys
from typing import Any, Mapping, NoReturn

from provider_python.sandbox import execute, landlock, limits, rootfs, seccomp, syscalls
from provider_python.sandbox.quota import Quota
from provider_python.sandbox.template import Template

RESULT_FD = 3
NET_FD = 4  # the host's network namespace, kept open for the `network: true` opt-in
USERNS_FD = 5  # the user namespace idmapping root's writable folders, made ahead of time (Root.userns)
RULES_FD = 6  # the Landlock ruleset with the shared paths and TCP denied, built ahead of time
SANDBOX_UID = 65534
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
# parameters arrive whole from the host, up to its assembled-message limit (256 MiB, PROTOCOL.md §1.1)
MAX_REQUEST_BYTES = 272 << 20


def warm(link: socket.socket, host_net: int | None, layers: frozenset[str], stage: str, tpl: Template,
         idmap: int | None = None) -> NoReturn:
    """Prepare ahead of time, then wait on `link` for one execution (its fds and request).
    `idmap`: a user namespace mapping root to the sandbox uid, made once for every slot."""
    if syscalls.IS_LINUX:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)  # the supervisor died -> so do we
    # Its own session and process group, ahead of time: setsid() also starts a scheduler
    # autogroup, whose first run waits behind the runnable tasks (2-4 ms under load, measured).
    os.setsid()
    root, failure, rules = None, "", None
    try:
        if "mountns" in layers:
            root = rootfs.Root(stage, idmap_to=SANDBOX_UID if "idmap" in layers else None, root_userns=idmap)
            root.prepare(tpl.shared_paths, with_proc="pidns" in layers)
        rules = _prepare_rules(layers, tpl, stage if root is not None else "")
    except BaseException as exc:  # noqa: BLE001 - reported once the execution (and its fds) arrive
        failure = f"sandbox setup failed: {exc}"
    execute.run({"code": "result = None", "context": {}})  # copy the pages an execution writes now, not then
    received = _receive(link)
    if received is None:
        os._exit(0)
    req, (stdout_fd, stderr_fd, result_fd) = received
    made_ahead = root.userns.get((0, 0)) if root else None
    _install_fds(stdout_fd, stderr_fd, result_fd, {NET_FD: host_net, USERNS_FD: made_ahead,
                                                   RULES_FD: rules})
    if root is not None and made_ahead is not None:
        root.userns[0, 0] = USERNS_FD
    try:
        if failure:
            raise RuntimeError(failure)
        _confine(req, tpl, root, rules is not None)
    except BaseException as exc:  # noqa: BLE001 - any setup failure must be reported, not raised
        _finish(execute.error_record("SandboxError", str(exc) if failure else f"sandbox setup failed: {exc}"), 71)
    _finish(execute.run(req), 0)


def send_execution(link: socket.socket, raw_request: bytes, fds: tuple[int, int, int]) -> None:
    """The supervisor's half of `_receive`: the three fds with one byte, then the request line,
    in one sendmsg as far as the socket's buffer takes it, so that the child, woken by the fds,
    finds the request already there (one wake-up, not two)."""
    sent = socket.send_fds(link, [b"R", raw_request], list(fds))
    if sent < 1 + len(raw_request):
        link.sendall(memoryview(raw_request)[max(sent - 1, 0):])


def _receive(link: socket.socket) -> tuple[dict[str, Any], tuple[int, int, int]] | None:
    msg, fds, _, _ = socket.recv_fds(link, 1, 3)
    if not msg or len(fds) != 3:
        return None
    buf = bytearray()
    while not buf.endswith(b"\n") and len(buf) <= MAX_REQUEST_BYTES:
        chunk = link.recv(1 << 16)
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf), (fds[0], fds[1], fds[2])


def shared_rule_paths(layers: frozenset[str] | set[str], shared_paths: list[str]) -> tuple[list[str], list[str]]:
    """(read-only, read-write) paths every execution's Landlock rules allow, as seen inside the
    sandbox: the system and interpreter folders, and what the sandbox itself provides (private
    /tmp, devices, /proc)."""
    ro, rw = list(shared_paths), list(rootfs.DEVICES)
    if "mountns" in layers:
        ro += list(rootfs.STUB_FILES)
        rw += ["/tmp", "/dev/shm"]
        if "pidns" in layers:
            ro.append("/proc")
    return ro, rw


def _own_rule_paths(req: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(read-only, read-write) paths this execution's Landlock rules add to the shared ones."""
    ro, rw = _execution_paths(req)
    if "mountns" not in req["layers"]:
        rw.append(req["tmpdir"])
    return ro, rw


def _prepare_rules(layers: frozenset[str], tpl: Template, stage: str) -> int | None:
    """The ruleset with the shared paths and TCP denied, before the execution arrives (from the
    root being built under `stage`: the same objects the sandbox will see). Only that one:
    `network: true` is an opt-in, whose ruleset `_shared_rules` builds when it arrives."""
    if "landlock" not in layers or tpl.landlock_abi < 1:
        return None
    return _shared_rules(layers, tpl, stage, deny_tcp=True)


def _shared_rules(layers: frozenset[str] | set[str], tpl: Template, stage: str, *, deny_tcp: bool) -> int:
    ro, rw = shared_rule_paths(layers, tpl.shared_paths)
    return landlock.ruleset(tpl.landlock_abi, [stage + p for p in ro], [stage + p for p in rw], deny_tcp=deny_tcp)


def _execution_paths(req: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(read-only, read-write) host paths this execution adds to the shared system part."""
    ro = list(req["read_only"]) + list(req["read"])
    if req["network"]:
        ro += rootfs.NETWORK_PATHS
    return ro, [req["workspace"], *req["write"]]


def _install_fds(stdout_fd: int, stderr_fd: int, result_fd: int, kept: dict[int, int | None]) -> None:
    """The execution's pipes on 1, 2 and RESULT_FD, what was made ahead on its fixed number
    (`kept`: target -> fd or None), stdin from /dev/null, every other fd closed."""
    wanted = {1: stdout_fd, 2: stderr_fd, RESULT_FD: result_fd, **kept}
    moved = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for target, fd in wanted.items() if fd is not None}
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    for target in wanted:
        if target in moved:
            os.dup2(moved[target], target)
        else:
            _close_quietly(target)
    os.closerange(max(wanted) + 1, 1 << 20)  # everything else: fork-server sockets, other tasks' pipes
    sys.stdout = _text_stream(1)
    sys.stderr = _text_stream(2)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _text_stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedWriter(io.FileIO(fd, "w", closefd=False)), encoding="utf-8",
                            errors="backslashreplace", line_buffering=True)


def _confine(req: dict[str, Any], tpl: Template, root: rootfs.Root | None, rules_ready: bool) -> None:
    layers = set(req["layers"])
    if "netns" in layers:
        if req["network"]:
            syscalls.setns(NET_FD, syscalls.CLONE_NEWNET)  # the opt-in: back to the host's network
        os.close(NET_FD)
    if root is not None:
        root.enter(*_execution_paths(req), req["hidden"], tmp_mb=int(req["memory_mb"]), quota=Quota.of(req))
        root.release()
    # Still privileged, so folders the sandbox user could not traverse do not matter: the
    # working directory is entered by fd and Landlock's rules hold their paths open.
    workdir = os.open(req["workspace"], os.O_RDONLY | os.O_DIRECTORY)
    rules = None
    if "landlock" in layers:
        if not rules_ready:
            raise RuntimeError("Landlock is active but its rulesets were not prepared")
        rules = RULES_FD
        if req["network"]:  # in the root by now (if any): the objects the one ahead was built from
            os.close(RULES_FD)
            rules = _shared_rules(layers, tpl, "", deny_tcp=False)
        landlock.extend(rules, tpl.landlock_abi, *_own_rule_paths(req))
    if "caps" in layers and "uid" not in layers and os.geteuid() == 0:
        syscalls.drop_bounding_set()  # still root: make sure nothing executed can regain a capability
    become_sandbox(layers)
    if syscalls.IS_LINUX:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
    if "rlimits" in layers:
        limits.apply(req, with_nproc="uid" in layers)
    _scrub_env(req, tmp="/tmp" if root is not None else req["tmpdir"])
    os.fchdir(workdir)
    os.close(workdir)
    if layers & {"caps", "landlock", "seccomp"}:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)  # no setuid/file-capability gains via exec
    if rules is not None:
        landlock.enforce(rules)
    if "seccomp" in layers:
        seccomp.install(tpl.filters[bool(req["network"])])
    if syscalls.IS_LINUX:
        syscalls.limit_malloc_arenas(2)
    sys.dont_write_bytecode = True
    sys.path[:] = tpl.sys_path  # a `file` script is read by execute.run, as the sandbox user, after all this


def become_sandbox(layers: set[str] | frozenset[str] | list[str]) -> None:
    """The sandbox's identity: uid 65534 (where the `uid` layer is on), no capabilities (`caps`).
    Also taken by the supervisor to copy an execution's workspace changes (copyback.py)."""
    if "uid" in layers:
        syscalls.drop_uid(SANDBOX_UID)
    if "caps" in layers:
        syscalls.clear_capabilities()


def _scrub_env(req: Mapping[str, Any], *, tmp: str) -> None:
    """Only what the workflow passed explicitly, plus the few variables programs assume exist."""
    os.environ.clear()
    os.environ.update({"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": req["workspace"], "TMPDIR": tmp,
                       "PYTHONDONTWRITEBYTECODE": "1"})
    os.environ.update({str(k): str(v) for k, v in dict(req["env"]).items()})


def _finish(record: str, code: int) -> NoReturn:
    execute.flush_std_streams()
    data = ("\n" + record + "\n").encode()
    try:
        while data:
            data = data[os.write(RESULT_FD, data):]
    except OSError:
        code = code or 74
    os._exit(code)
