"""Shared fixtures. redis.asyncio is asyncio-only,
so every anyio test runs on asyncio."""

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- a real redis-server for the Redis backend's tests ---------------------------
REDIS_START_TIMEOUT_S = 10.0  # a local redis-server answers PING within milliseconds
REDIS_STOP_TIMEOUT_S = 10.0  # with appendonly it flushes the AOF before exiting


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server child process on a free loopback port with its own data dir.

    ``stop()`` then ``start()`` restarts it on the same port and dir, so with
    ``appendonly=True`` a test can check what survives a server restart.
    """

    def __init__(self, workdir: Path, *, appendonly: bool = False, tls: bool = False):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.fail(
                "redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install "
                "redis-server); the Redis tests need a real server and are not skipped"
            )
        self.workdir = workdir
        self.appendonly = appendonly
        self.tls = tls
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def cert(self) -> Path:
        """With ``tls``: the server's self-signed certificate (its own CA)."""
        return self.workdir / "cert.pem"

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://localhost:{self.port}/0?ssl_ca_certs={self.cert}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _listen_args(self) -> list[str]:
        if not self.tls:
            return ["--port", str(self.port)]
        if not self.cert.exists():
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-keyout", str(self.workdir / "key.pem"), "-out", str(self.cert),
                 "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                check=True, capture_output=True,
            )  # fmt: skip
        return [
            "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
            "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.workdir / "key.pem"),
            "--tls-ca-cert-file", str(self.cert),
        ]  # fmt: skip

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        self.process = subprocess.Popen(
            [
                str(self.binary),
                *self._listen_args(),
                "--bind", "127.0.0.1",
                "--dir", str(self.workdir),
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--logfile", str(log),
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    pytest.fail(f"redis-server on port {self.port} did not start:\n{tail}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(REDIS_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(REDIS_STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server (no persistence) for the whole session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, its database emptied for this test."""
    with redis.Redis(port=redis_server.port) as client:
        client.flushdb()
    return redis_server.url


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start extra servers (``appendonly=True`` for restart tests, ``tls=True`` for
    rediss:// URLs); all are stopped when the test ends."""
    servers: list[RedisServer] = []

    def start(*, appendonly: bool = False, tls: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", appendonly=appendonly, tls=tls)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
