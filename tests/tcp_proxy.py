"""A TCP proxy that tests can cut: a network outage between one client and a real server."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards TCP connections to a server; `cut()` drops them all and refuses new ones
    until `restore()`: a network outage that only this test's connections see."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.cuts = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._drop_all()

    def cut(self) -> None:
        # Under the lock an accept holds while it checks and registers a connection, so
        # none accepted as the cut begins escapes it.
        with self._lock:
            self.cuts += 1
            self.up.clear()
        self._drop_all()

    def restore(self) -> None:
        self.up.set()

    def _drop_all(self) -> None:
        with self._lock:
            dropping, self._open = self._open, []
        for sock in dropping:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if not self.up.is_set():
                    client.close()
                    continue
                upstream = socket.create_connection(self.target)
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
