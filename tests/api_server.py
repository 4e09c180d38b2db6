"""A real `relledger serve` process for the API tests: on a free port, waited for.

The tests talk to it over TCP with httpx, as any client would, so what they check is
what uvicorn and the routes do together (path decoding, streamed bodies, signals).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.keys import Role
from service.ledger_service import LedgerService
from service.schema import migrate

STARTUP_S = 30.0
LIMIT = 1024 * 1024
"""The body limit the API tests serve with."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command(store_url: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "relledger", "--db", store_url, "serve", *options]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (a graceful stop is 0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def start(store_url: str, log: Path, *options: str) -> Server:
    """`relledger serve` on a free loopback port, once /healthz answers."""
    port = free_port()
    command = serve_command(store_url, "--port", str(port), *options)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"serve did not answer /healthz in {STARTUP_S}s:\n{server.output()}")


@contextmanager
def running(store_url: str, log: Path, *options: str) -> Iterator[Server]:
    server = start(store_url, log, *options)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)


@dataclass
class Api:
    server: Server
    service: LedgerService
    keys: dict[Role, str]
    client: httpx.Client

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def get(
        self,
        path: str,
        role: Role = Role.READER,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        return self.client.get(path, headers={**self.auth(role), **(headers or {})}, **options)

    def post(self, body: bytes, media: str = "application/json") -> httpx.Response:
        headers = {**self.auth(Role.PRODUCER), "Content-Type": media}
        return self.client.post("/v1/interactions", content=body, headers=headers)


def serving_api(url: str, folder: Path) -> Iterator[Api]:
    """A migrated store with a key per role, served by a real process."""
    migrate(url)
    service = LedgerService.open(url)
    keys = {role: service.keys.create(role, f"test-{role.value}") for role in Role}
    options = ["--max-future-skew", "3650", "--max-body-bytes", str(LIMIT)]
    with (
        running(url, folder / "serve.log", *options) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        yield Api(server, service, keys, client)
    service.close()
