"""A runtime env's local py_modules folders become zips in the run store; URIs pass through."""

from __future__ import annotations

import io
import zipfile

import pytest

from flyray.errors import ConfigError
from flyray.store.pymodules import store_py_modules
from flyray.store.runstore import RunStore


def test_a_folder_becomes_a_stored_zip_and_uris_pass(make_project, tmp_path):
    root = make_project({"helpers/__init__.py": "X = 1\n", "helpers/more.py": "Y = 2\n"})
    store = RunStore(tmp_path / "store")
    uri, kept = store_py_modules([str(root / "helpers"), "s3://b/m.zip"], store)
    assert kept == "s3://b/m.zip"
    sha = uri.rsplit("/", 1)[-1].removesuffix(".zip")
    data = store.local_path("bundles", f"{sha}.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
    assert names == ["bundle/helpers/__init__.py", "bundle/helpers/more.py"]


def test_without_write_it_only_names_the_zip(make_project, tmp_path):
    root = make_project({"helpers/__init__.py": "X = 1\n"})
    store = RunStore(tmp_path / "store")
    (named,) = store_py_modules([str(root / "helpers")], store, write=False)
    assert not (tmp_path / "store").exists()
    assert store_py_modules([str(root / "helpers")], store) == [named]


@pytest.mark.parametrize(
    ("modules", "field"),
    [("one/string", "runtime_env.py_modules"), (["s3://b/m.zip", "/no/such/dir"], "[1]")],
)
def test_bad_entries_are_named(tmp_path, modules, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        store_py_modules(modules, RunStore(tmp_path / "store"))
