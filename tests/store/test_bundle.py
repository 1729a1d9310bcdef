"""Code bundles: the project root, what is left out, determinism, storage once, the size cap."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from flyray.errors import RunStoreError
from flyray.store import RunStore, bundle_files, create_bundle, project_root
from flyray.store.bundle import BUNDLE_TOP, pack_bundle

from .conftest import ProjectFactory

TASK = "import flyray\n"


def _names(store: RunStore, sha: str) -> list[str]:
    data = store.local_path("bundles", f"{sha}.zip").read_bytes()
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


# -- the project root ------------------------------------------------------------------


def test_root_is_the_nearest_folder_with_pyproject(make_project: ProjectFactory) -> None:
    root = make_project({"pyproject.toml": "", "src/pkg/deep/tasks.py": TASK})
    assert project_root(root / "src/pkg/deep/tasks.py") == root


def test_root_is_the_nearest_folder_with_git(make_project: ProjectFactory) -> None:
    root = make_project({".git/HEAD": "ref: refs/heads/main\n", "jobs/tasks.py": TASK})
    assert project_root(root / "jobs/tasks.py") == root


def test_nearest_marker_wins(make_project: ProjectFactory) -> None:
    root = make_project({".git/HEAD": "", "sub/pyproject.toml": "", "sub/tasks.py": TASK})
    assert project_root(root / "sub/tasks.py") == root / "sub"


def test_without_markers_the_root_is_the_files_folder(make_project: ProjectFactory) -> None:
    root = make_project({"a/b/tasks.py": TASK})
    assert project_root(root / "a/b/tasks.py") == root / "a" / "b"


# -- what goes in ------------------------------------------------------------------------


def test_excludes(make_project: ProjectFactory, tmp_path: Path) -> None:
    root = make_project(
        {
            "pyproject.toml": "",
            ".gitignore": "# comment\n*.log\n!keep.log\ndata/\n/build\nsecret.txt\n",
            "tasks.py": TASK,
            "pkg/__init__.py": "",
            "pkg/mod.py": "",
            "pkg/__pycache__/mod.cpython-311.pyc": b"\0",
            "pkg/stale.pyc": b"\0",
            "pkg/run.log": "x",
            "keep.log": "kept",
            "data/big.bin": b"\0" * 10,
            "pkg/data/nested.bin": b"\0",  # "data/" matches folders at any depth
            "build/out.txt": "x",
            "pkg/build/kept.txt": "kept: /build is anchored at the root",
            "secret.txt": "x",
            ".git/HEAD": "",
            ".venv/bin/python": "",
            "venv/lib/site.py": "",
            "envs/py311/pyvenv.cfg": "home = /usr/bin\n",
            "envs/py311/lib/x.py": "",
            "envs/notes.md": "kept",
            ".pytest_cache/v": "",
            ".ruff_cache/v": "",
            ".flyray/runs/r1/record.json": "{}",
            "runs-store/runs/r1/record.json": "{}",
        }
    )
    store = RunStore(root / "runs-store")
    assert list(bundle_files(root, exclude=(store.local_path(),))) == [
        ".gitignore",
        "envs/notes.md",
        "keep.log",
        "pkg/__init__.py",
        "pkg/build/kept.txt",
        "pkg/mod.py",
        "pyproject.toml",
        "tasks.py",
    ]
    bundle = create_bundle(root / "tasks.py", store)
    assert bundle.root == root and bundle.task_file == "tasks.py"
    assert _names(store, bundle.sha256) == [
        f"{BUNDLE_TOP}/{name}" for name in bundle_files(root, exclude=(store.local_path(),))
    ]


def test_every_entry_is_under_one_top_level_folder(make_project: ProjectFactory) -> None:
    # A project holding a single folder: Ray would strip it from a zip with files at its root.
    root = make_project({".git/HEAD": "", "app/tasks.py": TASK, "app/util/helpers.py": ""})
    store = RunStore(root.parent / "store")
    bundle = create_bundle(root / "app" / "tasks.py", store)
    assert bundle.task_file == "app/tasks.py"
    assert _names(store, bundle.sha256) == ["bundle/app/tasks.py", "bundle/app/util/helpers.py"]


def test_entries_have_fixed_timestamps_and_modes(make_project: ProjectFactory) -> None:
    root = make_project({"pyproject.toml": "", "tasks.py": TASK, "run.sh": "#!/bin/sh\n"})
    (root / "run.sh").chmod(0o700)
    (root / "tasks.py").chmod(0o600)
    store = RunStore(root.parent / "store")
    bundle = create_bundle(root / "tasks.py", store)
    archive = zipfile.ZipFile(store.local_path("bundles", f"{bundle.sha256}.zip"))
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    assert modes == {
        "bundle/pyproject.toml": 0o644,
        "bundle/run.sh": 0o755,
        "bundle/tasks.py": 0o644,
    }
    assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_task_file_left_out_is_an_error(make_project: ProjectFactory) -> None:
    root = make_project({"pyproject.toml": "", ".gitignore": "scratch/\n", "scratch/t.py": TASK})
    with pytest.raises(RunStoreError, match=r"task file .*t\.py is left out of the code bundle"):
        create_bundle(root / "scratch" / "t.py", RunStore(root.parent / "store"))


# -- content addressing ----------------------------------------------------------------


def test_same_content_same_sha_changed_content_new_sha(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    files = {"pyproject.toml": "", "tasks.py": TASK, "pkg/a.py": "A = 1\n", "pkg/b.py": "B = 2\n"}
    first = make_project(files, name="first")
    second = make_project(dict(reversed(files.items())), name="second")  # other creation order
    os.utime(second / "pkg" / "a.py", (1_000_000_000, 1_000_000_000))
    store = RunStore(tmp_path / "store")
    one = create_bundle(first / "tasks.py", store)
    two = create_bundle(second / "tasks.py", store)
    assert one.sha256 == two.sha256 and one.uri == two.uri
    assert one.root == first and two.root == second
    (second / "pkg" / "a.py").write_text("A = 2\n")
    three = create_bundle(second / "tasks.py", store)
    assert three.sha256 != one.sha256
    assert sorted(p.name for p in store.local_path("bundles").iterdir()) == sorted(
        [f"{one.sha256}.zip", f"{three.sha256}.zip"]
    )


def test_a_bundle_is_stored_once(make_project: ProjectFactory, tmp_path: Path) -> None:
    root = make_project({"pyproject.toml": "", "tasks.py": TASK})
    store = RunStore(tmp_path / "store")
    bundle = create_bundle(root / "tasks.py", store)
    path = store.local_path("bundles", f"{bundle.sha256}.zip")
    assert path.stat().st_size == bundle.size
    assert bundle.uri == path.as_uri()
    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert create_bundle(root / "tasks.py", store) == bundle
    assert path.stat().st_mtime == 1_000_000_000  # not written again


def test_packing_writes_nothing_and_names_the_bundle_a_run_stores(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    root = make_project({"pyproject.toml": "", "tasks.py": TASK})
    store = RunStore(tmp_path / "store")
    packed, data = pack_bundle(root / "tasks.py", store)
    assert not (tmp_path / "store").exists()
    stored = create_bundle(root / "tasks.py", store)
    assert packed == stored
    assert store.local_path("bundles", f"{stored.sha256}.zip").read_bytes() == data


def test_a_bundle_in_a_memory_store(make_project: ProjectFactory) -> None:
    root = make_project({"pyproject.toml": "", "tasks.py": TASK})
    store = RunStore("memory://flyray-test-bundles")
    bundle = create_bundle(root / "tasks.py", store)
    assert bundle.uri == f"memory:///flyray-test-bundles/bundles/{bundle.sha256}.zip"
    assert store.has_bundle(bundle.sha256)


# -- size cap ----------------------------------------------------------------------------


def test_size_cap_names_root_total_and_largest_files(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    files = {"pyproject.toml": "", "tasks.py": TASK, "weights/model.bin": b"\0" * 3 * 2**20}
    files |= {f"data/part-{i}.csv": b"x" * (i + 1) * 1000 for i in range(6)}
    root = make_project(files)
    with pytest.raises(RunStoreError) as info:
        create_bundle(root / "tasks.py", RunStore(tmp_path / "store"), max_bytes=2**20)
    message = str(info.value)
    assert str(root) in message
    assert "3.0 MiB in 9 files, over the limit of 1.0 MiB" in message
    assert "largest files: weights/model.bin (3.0 MiB), data/part-5.csv" in message
    assert "data/part-2.csv (2.9 KiB)" in message and "part-1" not in message  # only 5 listed
    assert ".gitignore" in message
    assert not (tmp_path / "store").exists()  # nothing written


def test_default_cap_is_100_mib(make_project: ProjectFactory, tmp_path: Path) -> None:
    root = make_project({"pyproject.toml": "", "tasks.py": TASK})
    with (root / "big.bin").open("wb") as f:
        f.truncate(100 * 2**20 + 1)  # sparse: cheap to write, too big to bundle
    with pytest.raises(RunStoreError, match=r"big\.bin \(100\.0 MiB\)"):
        create_bundle(root / "tasks.py", RunStore(tmp_path / "store"))
    shutil.rmtree(root)


def test_a_driver_s_unpacked_bundle_is_removed_when_it_exits(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    import subprocess
    import sys

    root = make_project({"pyproject.toml": "", "tasks.py": TASK})
    bundle = create_bundle(root / "tasks.py", RunStore(str(tmp_path / "store")))
    parent = tmp_path / "drivers"
    parent.mkdir()
    code = (
        "import sys; from pathlib import Path; from flyray.entrypoint import enter_bundle; "
        "folder = enter_bundle(sys.argv[1], parent=Path(sys.argv[2])); "
        "print(folder, (folder / 'tasks.py').is_file())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, bundle.uri, str(parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    folder, unpacked = done.stdout.split()
    assert unpacked == "True" and Path(folder).parent == parent
    assert list(parent.iterdir()) == []  # gone with the driver
