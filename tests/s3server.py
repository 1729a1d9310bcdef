"""A real S3 API for the tests: moto's server mode as a process of its own, with IAM on.

``S3Server.start(host)`` runs ``python -m moto.server`` on a free port in a process group of
its own (stopped by group in ``stop``), its output kept in a log file. IAM authentication is
on from the fourth request (``INITIAL_NO_AUTH_ACTION_COUNT``): the first three make a user,
its access key and a policy allowing everything, so requests signed with another key or
secret are refused as AWS refuses them (InvalidAccessKeyId, SignatureDoesNotMatch).
``env()`` gives a client what it needs through the standard variables (botocore reads
``AWS_ENDPOINT_URL``); the secret is never printed (``repr`` leaves it out).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REGION", "S3Server"]

REGION = "us-east-1"
START_TIMEOUT_S = 30.0
_SETUP_ACTIONS = 3  # create_user, create_access_key, put_user_policy: unauthenticated
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class StoredRun:
    """One run's keys in the bucket: ``run`` is its folder; the manifest as stored."""

    run_id: str
    run: str
    code_bundle: str
    site_bundle: str
    manifest: dict[str, Any]


@dataclass
class S3Server:
    """One moto server: its endpoint, the credentials it accepts, its process and log."""

    host: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    access_key: str = ""
    secret_key: str = field(default="", repr=False)

    @property
    def endpoint(self) -> str:
        """The URL clients use (``AWS_ENDPOINT_URL``)."""
        return f"http://{self.host}:{self.port}"

    @classmethod
    def start(cls, host: str, log: Path) -> S3Server:
        """Start the server on ``host`` and a free port; make the user whose key it accepts."""
        port = _free_port(host)
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS)}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        server = cls(host=host, port=port, log=log, process=process)
        try:
            server._wait_listening()
            server._make_user()
        except BaseException:
            server.stop()
            raise
        return server

    def env(self, **changes: str) -> dict[str, str]:
        """The AWS_* variables a client of this server needs (``changes`` replace some)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            **changes,
        }

    def client(self) -> Any:
        """A boto3 S3 client with the server's credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def create_bucket(self, name: str) -> str:
        """A new bucket; its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``, sorted (boto3, not fsspec)."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def run_objects(self, bucket: str, prefix: str) -> StoredRun:
        """The one run stored under ``prefix``: its objects all there, its two bundles named
        by its manifest (the code bundle as ``working_dir``, flyray's site bundle first in
        ``py_modules``) and stored content-addressed."""
        import re

        import yaml

        keys = self.keys(bucket)
        (record_key,) = [key for key in keys if key.endswith("/record.json")]
        run_id = record_key.split("/")[-2]
        run = f"{prefix}/runs/{run_id}"
        for name in ("record.json", "inputs.pkl", "outputs.pkl", "manifest.yaml", "logs/job.log"):
            assert f"{run}/{name}" in keys, keys
        stored = self.client().get_object(Bucket=bucket, Key=f"{run}/manifest.yaml")
        manifest = yaml.safe_load(stored["Body"].read())
        env = yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])
        bundles = []
        for uri in (env["working_dir"], env["py_modules"][0]):
            key = uri.removeprefix(f"s3://{bucket}/")
            assert re.fullmatch(rf"{prefix}/bundles/[0-9a-f]{{64}}\.zip", key), uri
            assert key in keys, keys
            bundles.append(key)
        return StoredRun(run_id, run, *bundles, manifest)

    def requests(self) -> list[str]:
        """The request lines the server logged so far ("GET /bucket/key HTTP/1.1" 200)."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if '"' in line]

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL what is left after 5 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"moto server exited ({self.process.returncode}): {self._tail()}"
                )
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server not listening: {self._tail()}") from None
                time.sleep(0.05)

    def _make_user(self) -> None:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",  # not checked before IAM is on
        )
        iam.create_user(UserName="flyray-tests")
        key = iam.create_access_key(UserName="flyray-tests")["AccessKey"]
        iam.put_user_policy(
            UserName="flyray-tests", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL)
        )
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
