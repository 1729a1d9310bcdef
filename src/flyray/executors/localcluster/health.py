"""What a local cluster's start waits on: the GCS's node table, the Jobs API, a port.

The GCS is asked over one gRPC channel (never through a caller's http_proxy), kept until the
cluster stops or its head moves to a new port; HTTP goes straight to 127.0.0.1.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["GcsNodes", "jobs_api_ready", "port_open"]

# An HTTP opener that ignores http_proxy & co: every request here goes to 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class GcsNodes:
    """The GCS's table of nodes, asked with the cluster's token (one cheap call, ~1 ms)."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token
        self._channel: Any = None
        self._address = ""

    def alive_ports(self, address: str, *, quiet: bool) -> set[int] | None:
        """The node-manager ports of the alive nodes; None (if quiet) when the GCS is not up."""
        import grpc
        from ray.core.generated import gcs_pb2, gcs_service_pb2

        try:
            reply = self._stub(address).GetAllNodeInfo(
                gcs_service_pb2.GetAllNodeInfoRequest(),
                metadata=(("authorization", f"Bearer {self._token()}"),),
                timeout=2.0,
            )
        except grpc.RpcError:
            if quiet:
                return None
            raise
        alive = gcs_pb2.GcsNodeInfo.GcsNodeState.Value("ALIVE")
        return {n.node_manager_port for n in reply.node_info_list if n.state == alive}

    def _stub(self, address: str) -> Any:
        import grpc
        from ray.core.generated import gcs_service_pb2_grpc

        if self._channel is not None and address != self._address:
            self.close()  # the head moved (a retried start)
        if self._channel is None:
            options = [("grpc.enable_http_proxy", 0)]  # never via an http_proxy of the caller
            self._channel = grpc.insecure_channel(address, options=options)
            self._address = address
        return gcs_service_pb2_grpc.NodeInfoGcsServiceStub(self._channel)

    def close(self) -> None:
        """Close the channel, if one is open."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def jobs_api_ready(dashboard_url: str, headers: Mapping[str, str]) -> bool:
    """True once the dashboard answers an authenticated Jobs API request."""
    request = urllib.request.Request(f"{dashboard_url}/api/jobs/", headers=dict(headers))
    try:
        with _DIRECT.open(request, timeout=2.0) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def port_open(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
