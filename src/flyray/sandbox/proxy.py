"""A loopback TCP forwarder in front of the API server whose connections a test can cut.

TLS passes through untouched (same address, same certificate). ``drop()`` closes every open
connection at once, as a load balancer or a network blip would: watches and log streams end
mid-way and the client has to resume them. ``listen`` says where it listens (127.0.0.1 by
default; the process kubelet's pods: a socket in the pod's network namespace).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

__all__ = ["TcpProxy"]

_CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:``port`` (or the socket ``listen(port)`` makes) to ``target``; a
    context manager that stops it."""

    def __init__(
        self, target: tuple[str, int], *, listen: Callable[[int], socket.socket] | None = None
    ) -> None:
        self.target = target
        self._make_listener = listen or _loopback
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.accepted = 0
        self.dropped = 0
        self._closed = False
        self.port = 0
        self._listen()

    def _listen(self) -> None:
        """Listen on ``port`` (any free one the first time) and accept in a thread."""
        self._listener = self._make_listener(self.port)
        self.port = self._listener.getsockname()[1]
        threading.Thread(
            target=self._accept, args=(self._listener,), name="realkube-proxy", daemon=True
        ).start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def retarget(self, target: tuple[str, int]) -> int:
        """Send new connections to ``target`` and cut the open ones; how many were cut."""
        self.target = target
        return self.drop()

    def drop(self) -> int:
        """Cut every connection open now; how many there were (pairs, client side counted)."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        cut = len(sockets) // 2
        self.dropped += cut
        return cut

    def refuse(self) -> int:
        """Stop listening (connections are refused, as with no server) and cut the open ones."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        return self.drop()

    def resume(self) -> None:
        """Listen again on the same port after ``refuse``."""
        self._listen()

    def close(self) -> None:
        """Stop accepting and cut everything (idempotent)."""
        self._closed = True
        self.refuse()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way until either side ends, then end both."""
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _loopback(port: int) -> socket.socket:
    return socket.create_server(("127.0.0.1", port), reuse_port=False)
