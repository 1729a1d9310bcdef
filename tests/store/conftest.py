"""Fixtures for the run store: stores on a path, a file:// URI, fsspec's memory and a real S3
API (moto's server, ``tests/s3server.py``), and projects."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flyray.store import RunStore

ProjectFactory = Callable[..., Path]


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    """A local run store in a fresh folder, outside any project."""
    return RunStore(tmp_path / "store")


@pytest.fixture(params=["path", "file-uri", "memory", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """The same store API over a local path, a ``file://`` URI, ``memory://`` and ``s3://``."""
    if request.param == "s3":
        yield RunStore(f"s3://{request.getfixturevalue('s3_bucket')}/flyray")
    elif request.param == "path":
        yield RunStore(str(tmp_path / "store"))
    elif request.param == "file-uri":
        yield RunStore((tmp_path / "store").as_uri())
    else:
        root = f"memory://flyray-test-{uuid.uuid4().hex}"
        yield RunStore(root)
        import fsspec

        fs = fsspec.filesystem("memory")
        if fs.exists(root):
            fs.rm(root, recursive=True)


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write a project: ``make_project({"rel/path.py": "source"}, name="p")`` -> its root."""

    def make(files: dict[str, str | bytes], *, name: str = "project") -> Path:
        root = tmp_path / name
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
        root.mkdir(exist_ok=True)
        return root

    return make
