"""An egress proxy for the process kubelet's pods: HTTP CONNECT on the bridge's host address.

Pods run in network namespaces with no route beyond the bridge (``net.py``), so a runtime
env's ``pip install`` in a Ray pod cannot reach the package index by itself. Real nodes often
reach the internet only through a proxy; this is that proxy: a small threaded HTTP CONNECT
server on the host, listening on the bridge's host address (the pods' default gateway), that
resolves the name on the host and pipes bytes both ways. Only CONNECT is served (pip speaks
HTTPS to the index through it); any other method gets 405.

The kubelet puts ``PIP_PROXY=http://<gateway>:<port>`` in every container's environment:
pip's own variable, not ``HTTP(S)_PROXY``, which gRPC inside Ray would honour too and send
the cluster's own traffic through here. ``close()`` stops the server and every open tunnel.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading

__all__ = ["EgressProxy"]

CONNECT_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 300.0  # a tunnel with no bytes either way for this long is closed
_MAX_HEAD = 16 * 1024


class EgressProxy:
    """A CONNECT proxy on ``host`` (a free port); ``url`` is what ``PIP_PROXY`` gets."""

    def __init__(self, host: str) -> None:
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer((host, 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="egress-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def open(self) -> EgressProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, close every tunnel, wait for the server loop (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        with self._lock:
            for sock in list(self._sockets):
                _end(sock)
            self._sockets.clear()

    # --- one connection -------------------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        try:
            head = _read_head(client)
            if head is None:
                return
            method, _, target = head.partition(" ")
            if method.upper() != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n")
                return
            host, _, port = target.split(" ", 1)[0].rpartition(":")
            try:
                upstream = socket.create_connection(
                    (host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S
                )
            except (OSError, ValueError) as exc:
                reason = str(exc).encode(errors="replace")[:200]
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n" + reason)
                return
            self._track(upstream)
            try:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(client, upstream)
            finally:
                self._untrack(upstream)
        except OSError:
            pass  # the client or the proxy went away
        finally:
            self._untrack(client)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        _end(sock)


def _end(sock: socket.socket) -> None:
    """Shut the socket down (which wakes a thread waiting on it, and the peer), then close it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _read_head(client: socket.socket) -> str | None:
    """The request line of the client's request head (read up to its blank line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        if not chunk or len(data) > _MAX_HEAD:
            return None
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes or nothing moves for IDLE_TIMEOUT_S."""
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select(list(peers), [], [], IDLE_TIMEOUT_S)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)
