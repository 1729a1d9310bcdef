"""Credentials of a throw-away API server: a CA, certificates, keys and tokens.

The serving certificate serves the API server and the process kubelet alike; the API server
shows the kubelet a client certificate of the same CA, and each checks the other. Made with
the ``openssl`` command (Debian's, on every machine of this project) so the tests need no
Python crypto package; valid one day, for 127.0.0.1 and localhost, and, as a real cluster's
API server certificate is, for the ``kubernetes`` Service: its ClusterIP (the first address
of ``SERVICE_IP_RANGE``) and its names, which is how pods reach the API server
(``pods/apiservice.py``).
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KUBERNETES_SERVICE_IP", "SERVICE_IP_RANGE", "Credentials", "make_credentials"]

SERVICE_IP_RANGE = "10.0.0.0/24"  # the API server's --service-cluster-ip-range
KUBERNETES_SERVICE_IP = "10.0.0.1"  # the first address of it: the ``kubernetes`` Service's
_SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Credentials:
    """Files the API server reads, and the bearer tokens of its two users."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    kubelet_client_cert: Path  # the API server's, when it calls a kubelet (pod logs)
    kubelet_client_key: Path
    service_account_key: Path
    service_account_pub: Path
    token_file: Path
    admin_token: str  # user "admin" in group system:masters: may do anything
    user_token: str  # user "alice": only what RBAC grants her (nothing, to begin with)
    operator_token: str  # user "kuberay-operator", in system:masters too: for a stand-in
    manager_token: str  # user "kube-controller-manager", in system:masters too


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def make_credentials(folder: Path) -> Credentials:
    """Write every credential into ``folder`` (created) and say where each is."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=flyray-realkube-ca"),
        cwd=folder,
    )
    names = ",".join(f"DNS:{name}" for name in _SERVICE_NAMES)
    (folder / "server.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost,IP:{KUBERNETES_SERVICE_IP},{names}\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key"),
        *("-out", "server.csr", "-subj", "/CN=kube-apiserver"),
        cwd=folder,
    )
    _openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "1", "-extfile", "server.ext", "-out", "server.crt"),
        cwd=folder,
    )
    (folder / "client.ext").write_text(
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    )
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "kubelet-client.key"),
        *("-out", "kubelet-client.csr", "-subj", "/O=system:masters/CN=kube-apiserver"),
        cwd=folder,
    )
    _openssl(
        *("x509", "-req", "-in", "kubelet-client.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "1", "-extfile", "client.ext"),
        *("-out", "kubelet-client.crt"),
        cwd=folder,
    )
    _openssl("genpkey", "-algorithm", "RSA", "-out", "sa.key", cwd=folder)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)
    admin, user, operator, manager = (secrets.token_hex(16) for _ in range(4))
    token_file = folder / "tokens.csv"
    token_file.write_text(
        f'{admin},admin,uid-admin,"system:masters"\n'
        f"{user},alice,uid-alice\n"
        f'{operator},kuberay-operator,uid-operator,"system:masters"\n'
        f'{manager},kube-controller-manager,uid-manager,"system:masters"\n'
    )
    return Credentials(
        ca_cert=folder / "ca.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        kubelet_client_cert=folder / "kubelet-client.crt",
        kubelet_client_key=folder / "kubelet-client.key",
        service_account_key=folder / "sa.key",
        service_account_pub=folder / "sa.pub",
        token_file=token_file,
        admin_token=admin,
        user_token=user,
        operator_token=operator,
        manager_token=manager,
    )
