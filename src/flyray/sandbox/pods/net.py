"""Pod networking for the process kubelet: a bridge, and a network namespace a pod.

Each pod gets a network namespace of its own (``ip netns``), joined to a bridge on the host by
a veth pair, with an address from a /24 this network owns (``10.213.N.0/24``, an N no route of
the machine uses). Pods reach each other over the bridge, and the host (the API server's
service proxy, readiness probes) reaches every pod; nothing is routed further. Name lookups
in a pod read ``/etc/netns/<namespace>/hosts`` (``ip netns exec`` mounts it on ``/etc/hosts``):
the kubelet writes the pod's own name and the names of the cluster's Services there, and an
unreachable resolver (``resolv.conf``) makes any other lookup fail at once, not after a
timeout. Everything is named after the owning process (``flyrk<pid>``), so what a killed test
session left behind is recognised and removed by the next one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NetworkError", "PodNet", "PodNetwork", "netns_available"]

PREFIX = "flyrk"
NETNS_DIR = Path("/etc/netns")
OWNED = re.compile(rf"^{PREFIX}(\d+)")  # namespaces and links: flyrk<pid>...
KILL_TIMEOUT_S = 10.0


class NetworkError(RuntimeError):
    """An ``ip`` command failed; the message holds the command and what it printed."""


def ip(*args: str) -> str:
    """Run ``ip ARGS`` (an argv list, never a shell line); its output, or ``NetworkError``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def netns_available() -> str:
    """ "" when network namespaces can be made here, else why not (for a skip reason)."""
    if shutil.which("ip") is None:
        return "no `ip` command (Debian package iproute2)"
    if shutil.which("unshare") is None:
        return "no `unshare` command (Debian package util-linux)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
        ip("netns", "del", probe)
    except NetworkError as exc:
        return f"cannot make a network namespace: {exc}"
    return ""


@dataclass
class PodNet:
    """One pod's network: its namespace, address, and the files ``ip netns exec`` mounts."""

    netns: str
    address: str
    hosts_file: Path
    removed: bool = False  # set (under ``lock``) before its files go
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pids(self) -> list[int]:
        """Every process in this pod's network namespace."""
        try:
            return [int(pid) for pid in ip("netns", "pids", self.netns).split()]
        except NetworkError:  # the namespace is gone
            return []


class PodNetwork:
    """The bridge and the pods' namespaces of one kubelet; ``close()`` removes all of them."""

    def __init__(self) -> None:
        self.owner = f"{PREFIX}{os.getpid()}"
        self.bridge = self.owner  # interface names have at most 15 characters
        self.subnet = ipaddress.IPv4Network("0.0.0.0/32")
        self.gateway = ""
        self._free: list[str] = []
        self._pods: dict[str, PodNet] = {}
        self._count = 0
        self._lock = threading.Lock()

    def open(self) -> PodNetwork:
        """Remove what dead sessions left, then make the bridge on a free /24."""
        remove_orphans()
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self.gateway = str(hosts[0])
        self._free = [str(address) for address in hosts[1:]]
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_pod(self, hostname: str) -> PodNet:
        """A namespace with an address and default route; ``hostname`` resolves to it."""
        with self._lock:
            self._count += 1
            name = f"{self.owner}-{self._count}"
            host_end = f"fk{os.getpid()}v{self._count}"  # at most 15 characters
            address = self._free.pop(0)
        pod = PodNet(name, address, NETNS_DIR / name / "hosts")
        self._pods[name] = pod
        ip("netns", "add", name)
        ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name)
        ip("link", "set", host_end, "master", self.bridge, "up")
        ip("-n", name, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "route", "add", "default", "via", self.gateway)
        pod.hosts_file.parent.mkdir(parents=True, exist_ok=True)
        # only the hosts file answers; a resolver on a closed port fails lookups at once
        (pod.hosts_file.parent / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        pod.hosts_file.write_text(hosts_text({address: [hostname]}))
        return pod

    def remove_pod(self, pod: PodNet) -> None:
        """SIGKILL whatever still runs in the pod's namespace, then remove the namespace."""
        with pod.lock:
            pod.removed = True
        _remove_netns(pod.netns)
        with self._lock:
            self._pods.pop(pod.netns, None)
            self._free.append(pod.address)

    def namespaces(self) -> list[str]:
        """The network namespaces of this network that exist now."""
        return [name for name in _netns_names() if name.startswith(f"{self.owner}-")]

    def close(self) -> None:
        """Remove every pod's namespace, then the bridge (idempotent)."""
        for pod in list(self._pods.values()):
            self.remove_pod(pod)
        with contextlib.suppress(NetworkError):
            ip("link", "del", self.bridge)


def hosts_text(names: dict[str, list[str]]) -> str:
    """A hosts file: localhost, then one line an address."""
    lines = ["127.0.0.1 localhost"]
    lines += [f"{address} {' '.join(hosts)}" for address, hosts in names.items()]
    return "\n".join(lines) + "\n"


def write_hosts(pod: PodNet, names: dict[str, list[str]]) -> None:
    """Rewrite the pod's hosts file IN PLACE: a running pod sees ``/etc/hosts`` change.

    ``ip netns exec`` bind-mounts the file itself, so replacing it (a rename) would leave the
    pod's processes reading the old one. A pod being removed is left alone.
    """
    text = hosts_text(names)
    with pod.lock:
        if pod.removed or pod.hosts_file.read_text() == text:
            return
        with pod.hosts_file.open("r+") as out:
            out.write(text)
            out.truncate()


def _remove_netns(name: str) -> None:
    """SIGKILL every process in the namespace until none is left (one may fork meanwhile),
    then remove it; ``NetworkError`` if processes survive (the namespace is kept, findable)."""
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while True:
        try:
            pids = [int(pid) for pid in ip("netns", "pids", name).split()]
        except NetworkError:  # no such namespace
            break
        if not pids:
            with contextlib.suppress(NetworkError):
                ip("netns", "del", name)  # its veth pair goes with it
            break
        if time.monotonic() > deadline:
            raise NetworkError(f"processes {pids} of network namespace {name} survive SIGKILL")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    shutil.rmtree(NETNS_DIR / name, ignore_errors=True)


def remove_orphans() -> None:
    """Remove namespaces and bridges of this naming whose owning process is gone."""
    for name in _netns_names():
        if _orphaned(name):
            _remove_netns(name)
    for link in json.loads(ip("-j", "link", "show", "type", "bridge") or "[]"):
        if _orphaned(link["ifname"]):
            with contextlib.suppress(NetworkError):
                ip("link", "del", link["ifname"])


def _netns_names() -> list[str]:
    """Every named network namespace (``ip netns list`` prints "<name> (id: N)" lines)."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def _orphaned(name: str) -> bool:
    found = OWNED.match(name)
    if found is None or int(found.group(1)) == os.getpid():
        return False
    return not Path(f"/proc/{found.group(1)}").exists()


def _free_subnet() -> ipaddress.IPv4Network:
    """A ``10.213.N.0/24`` that overlaps no route or address of this machine."""
    routes = json.loads(ip("-j", "-4", "route", "show", "table", "all") or "[]")
    taken = [
        ipaddress.ip_network(route["dst"], strict=False)
        for route in routes
        if route.get("dst", "default") != "default"
    ]
    start = os.getpid() % 256
    for step in range(256):
        subnet = ipaddress.IPv4Network(f"10.213.{(start + step) % 256}.0/24")
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise NetworkError("no free /24 in 10.213.0.0/16 for the pods")
