"""The process kubelet's egress proxy: CONNECT tunnels bytes both ways, nothing else is served,
and close() leaves no listener and no tunnel open."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from flyray.sandbox.pods.egress import EgressProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy():
    egress = EgressProxy("127.0.0.1").open()
    yield egress
    egress.close()


def _ask(port: int, head: bytes) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head)
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(1024)
        if not chunk:
            break
        reply += chunk
    return sock, reply


def test_connect_tunnels_both_ways(proxy, echo):
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    sock, reply = _ask(proxy.port, f"CONNECT 127.0.0.1:{echo} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    with sock:
        assert reply.startswith(b"HTTP/1.1 200")
        sock.sendall(b"ping through the tunnel")
        assert sock.recv(1024) == b"ping through the tunnel"


def test_other_methods_and_unreachable_targets_are_refused(proxy):
    sock, reply = _ask(proxy.port, b"GET http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.close()
    assert reply.startswith(b"HTTP/1.1 405")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    sock, reply = _ask(proxy.port, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    sock.close()
    assert reply.startswith(b"HTTP/1.1 502")


def test_close_ends_the_listener_and_open_tunnels(echo):
    before = set(_proxy_threads())  # other proxies (a session's kubelet) may be running
    egress = EgressProxy("127.0.0.1").open()
    assert set(_proxy_threads()) - before
    sock, reply = _ask(egress.port, f"CONNECT 127.0.0.1:{echo} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 200")
    egress.close()
    with sock:
        assert sock.recv(1024) == b""  # the tunnel was closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", egress.port), timeout=5)
    assert set(_proxy_threads()) <= before


def _proxy_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "egress-proxy"]
