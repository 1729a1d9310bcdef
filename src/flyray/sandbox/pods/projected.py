"""A pod's projected volumes, filled and mounted as a kubelet does: ``kube-api-access-*``.

The API server's ServiceAccount admission plugin gives every pod (unless it says
``automountServiceAccountToken: false``) a projected volume ``kube-api-access-<random>``,
mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in each container:
``token``, a token of the pod's service account from the TokenRequest API, bound to the pod
(it stops working once the pod is deleted); ``ca.crt``, from the ``kube-root-ca.crt``
ConfigMap the controller-manager's root CA publisher writes; ``namespace``, from the downward
API. That is what in-cluster clients such as KubeRay's autoscaler read.

The process kubelet writes each projected volume into the pod's folder (``volumes/<name>``,
each file replaced whole by a rename), renews each token once 80% of its lifetime has passed
(as a kubelet does), and removes the files when the pod ends. ``binds`` says what a
container's launch line binds where, in the pod's own mount namespace only: a mount path under
``/run`` (``/var/run`` links there) lands in a ``/run`` of the pod's own (its folder's
``run``, bound over ``/run`` first, where the mount point is made), any other on a folder that
exists on this machine. Volumes of other kinds are not mounted (containers see the host's
files). Not done: ``readOnly`` (the files are the kubelet's, in the pod's folder), ``subPath``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyray.sandbox.pods.spec import PodSpecError, pod_field

__all__ = ["ProjectedVolumes"]

RENEW_FRACTION = 0.8  # a kubelet renews a token once this much of its lifetime has passed
MAX_TOKEN_AGE_S = 24 * 3600.0  # ... or once it is a day old
DEFAULT_EXPIRATION_S = 3600
RETRY_S = 5.0  # a renewal that failed is tried again after this long
RUN = Path("/run")


@dataclass
class _Token:
    volume: str
    source: dict[str, Any]  # the ``serviceAccountToken`` source
    mode: int
    renew_at: float = 0.0  # monotonic


@dataclass
class ProjectedVolumes:
    """The projected volumes of one pod; ``write()`` fills them, ``binds()`` mounts them."""

    pod: dict[str, Any]
    folder: Path  # the pod's folder on the host
    core: Any  # kubernetes.client.CoreV1Api
    lookup: Callable[[str, str], Mapping[str, str] | None]  # ("secret"|"configmap", name)
    tokens: list[_Token] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.folder / "volumes"

    def volumes(self) -> dict[str, dict[str, Any]]:
        """The pod's projected volumes, by name."""
        return {
            volume["name"]: volume["projected"]
            for volume in self.pod["spec"].get("volumes") or []
            if "projected" in volume
        }

    def write(self) -> ProjectedVolumes:
        """Fill every projected volume (``PodSpecError`` when a source cannot be read)."""
        for name, projected in self.volumes().items():
            mode = int(projected.get("defaultMode", 0o644))
            (self.root / name).mkdir(parents=True, exist_ok=True)
            for source in projected.get("sources") or []:
                if "serviceAccountToken" in source:
                    token = _Token(name, source["serviceAccountToken"], mode)
                    self._renew(token)
                    self.tokens.append(token)
                elif "configMap" in source or "secret" in source:
                    self._write_object(name, source, mode)
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"].get("items") or []:
                        if "fieldRef" not in item:
                            raise PodSpecError(f"volume {name}: only fieldRef items are supported")
                        value = pod_field(self.pod, item["fieldRef"]["fieldPath"])
                        self._put(name, item["path"], value.encode(), item.get("mode", mode))
        return self

    def refresh(self) -> None:
        """Renew the tokens that are due (a failed renewal keeps the old one, tried again)."""
        from kubernetes import client

        for token in self.tokens:
            if time.monotonic() >= token.renew_at:
                try:
                    self._renew(token)
                except (PodSpecError, client.ApiException, OSError):
                    token.renew_at = time.monotonic() + RETRY_S

    def binds(self, container: Mapping[str, Any]) -> list[str]:
        """Pairs (host folder, where the container sees it) for the launch line, in order."""
        projected = self.volumes()
        pairs: list[str] = []
        private_run = False
        for mount in container.get("volumeMounts") or []:
            name = mount["name"]
            if name not in projected:
                continue
            if mount.get("subPath") or mount.get("subPathExpr"):
                raise PodSpecError(f"volume mount {name}: subPath is not supported here")
            target = Path(os.path.realpath(mount["mountPath"]))
            if target.is_relative_to(RUN):
                (self.folder / "run" / target.relative_to(RUN)).mkdir(parents=True, exist_ok=True)
                private_run = True
            elif not target.is_dir():
                raise PodSpecError(
                    f"volume mount {name} at {mount['mountPath']}: the process kubelet mounts "
                    "volumes under /run or on folders that exist on this machine"
                )
            pairs += [str(self.root / name), str(target)]
        return [str(self.folder / "run"), str(RUN), *pairs] if private_run else pairs

    def remove(self) -> None:
        """The pod has ended: its tokens and files go."""
        self.tokens.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- sources -----------------------------------------------------------------------------

    def _renew(self, token: _Token) -> None:
        """Ask the TokenRequest API for a token bound to this pod and write it."""
        from kubernetes import client

        metadata = self.pod["metadata"]
        account = self.pod["spec"].get("serviceAccountName") or "default"
        lifetime = int(token.source.get("expirationSeconds", DEFAULT_EXPIRATION_S))
        spec: dict[str, Any] = {
            "expirationSeconds": lifetime,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": metadata["name"],
                "uid": metadata["uid"],
            },
        }
        if token.source.get("audience"):
            spec["audiences"] = [token.source["audience"]]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        try:
            answer = self.core.create_namespaced_service_account_token(
                account, metadata["namespace"], body, _preload_content=False
            )
        except client.ApiException as exc:
            raise PodSpecError(
                f"no token for service account {account!r}: {exc.status} {exc.reason}"
            ) from exc
        value = json.loads(answer.data)["status"]["token"]
        self._put(token.volume, token.source["path"], value.encode(), token.mode)
        token.renew_at = time.monotonic() + min(RENEW_FRACTION * lifetime, MAX_TOKEN_AGE_S)

    def _write_object(self, volume: str, source: Mapping[str, Any], mode: int) -> None:
        """A ConfigMap's or Secret's keys (its ``items``, else every key) as files."""
        kind = "configmap" if "configMap" in source else "secret"
        ref = source["configMap"] if kind == "configmap" else source["secret"]
        data = self.lookup(kind, ref["name"])
        if data is None:
            if ref.get("optional"):
                return
            raise PodSpecError(f'volume {volume}: {kind} "{ref["name"]}" not found')
        items = ref.get("items") or [{"key": key, "path": key} for key in sorted(data)]
        for item in items:
            if item["key"] not in data:
                if ref.get("optional"):
                    continue
                raise PodSpecError(f"volume {volume}: no key {item['key']} in {ref['name']}")
            value = data[item["key"]]
            raw = base64.b64decode(value) if kind == "secret" else value.encode()
            self._put(volume, item["path"], raw, item.get("mode", mode))

    def _put(self, volume: str, path: str, data: bytes, mode: int) -> None:
        """Write one file of a volume whole: a reader sees the old content or the new."""
        target = self.root / volume / path
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.new")
        staged.write_bytes(data)
        staged.chmod(mode)
        os.replace(staged, target)
