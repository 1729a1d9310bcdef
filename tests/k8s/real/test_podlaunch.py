"""How the process kubelet starts a container: the folders it binds into the pod's private
``/tmp``, and its launch line, run for real in a mount namespace of its own (no cluster)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from flyray.sandbox.pods.launch import LAUNCH, MOUNT, SH, UNSHARE, tmp_binds


def test_the_folders_under_tmp_the_interpreter_needs_are_bound_once(tmp_path):
    root = tmp_path / "tmp"
    venv, src = root / "venv", root / "repo" / "src"
    for folder in (venv / "lib", src):
        folder.mkdir(parents=True)
    paths = [str(venv), str(venv / "lib"), str(src), str(root), "/usr/lib", "", str(root / "no")]
    assert tmp_binds(paths, root=root) == [venv, src]  # nested, outside, missing: left out
    assert tmp_binds([], root=root) == []


def test_the_running_interpreter_needs_what_it_runs_from():
    binds = tmp_binds()
    prefix = Path(sys.prefix).resolve()
    if prefix.is_relative_to("/tmp"):
        assert any(prefix.is_relative_to(b) for b in binds), binds
    else:
        assert all(b.is_relative_to("/tmp") for b in binds), binds


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"
)
def test_a_folder_under_tmp_is_seen_at_its_path_through_the_private_tmp(tmp_path):
    """The host folder is bound at the same path over the pod's own /tmp, whatever the
    container's PATH says; what the pod writes elsewhere in /tmp stays in its own."""
    venv = Path(tempfile.mkdtemp(prefix="flyray-launch-", dir="/tmp"))
    try:
        (venv / "bin").mkdir()
        (venv / "bin" / "marker").write_text("from the virtualenv\n")
        private = tmp_path / "private"
        place = private / venv.relative_to("/tmp")
        place.mkdir(parents=True)
        written = f"written-{venv.name}"
        script = (  # shell builtins only: the container's PATH leads nowhere
            f'read m < {venv}/bin/marker; echo "$m"; echo mine > /tmp/{written}; '
            'read h < /proc/sys/kernel/hostname; echo "$h"'
        )
        done = subprocess.run(
            [
                *(UNSHARE, "--mount", "--uts", SH, "-c", LAUNCH, "sh", "pod-a", MOUNT),
                *(str(private), str(venv), str(place), "--", "/bin/sh", "-c", script),
            ],
            capture_output=True,
            text=True,
            env={"PATH": "/nonexistent"},
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["from the virtualenv", "pod-a"]
        assert (private / written).read_text() == "mine\n"  # the pod's /tmp is its own
        assert not Path("/tmp", written).exists()
        assert list(place.iterdir()) == []  # outside the pod, the place stays an empty folder
    finally:
        shutil.rmtree(venv)
