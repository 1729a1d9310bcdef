"""The site bundle: flyray plus the pure-Python packages its driver needs that Ray lacks."""

from __future__ import annotations

import io
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import flyray
from flyray.store import sitebundle
from flyray.store.runstore import RunStore
from flyray.store.sitebundle import SITE_TOP, site_bundle, site_distributions


def _names(path: Path) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        return set(archive.namelist())


def test_it_holds_flyray_and_what_ray_default_lacks_and_a_render_stores_nothing(tmp_path):
    store = RunStore(tmp_path / "store")
    bundle = site_bundle(store, write=False, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "store").exists()
    assert bundle.uri == store.uri("bundles", f"{bundle.sha256}.zip")
    names = _names(tmp_path / "cache" / f"{bundle.sha256}.zip")
    assert all(name.startswith(f"{SITE_TOP}/") for name in names)  # one top folder: Ray strips it
    for module in ("flyray", "fsspec", "cloudpickle", "pathspec", "rich"):
        assert f"{SITE_TOP}/{module}/__init__.py" in names
    assert f"{SITE_TOP}/flyray-{flyray.__version__}.dist-info/METADATA" in names
    for module in ("ray", "yaml", "click", "aiohttp"):  # ray[default] has these
        assert f"{SITE_TOP}/{module}/__init__.py" not in names
    assert not any(name.endswith(".pyc") or "__pycache__" in name for name in names)
    assert bundle.distributions[0] == f"flyray=={flyray.__version__}"


def test_an_s3_store_adds_its_fsspec_backend():
    local = {d.metadata["Name"] for d in site_distributions("/tmp/runs")[0]}
    s3 = {d.metadata["Name"] for d in site_distributions("s3://bucket/runs")[0]}
    assert "s3fs" not in local and "botocore" not in local
    assert {"s3fs", "aiobotocore", "botocore"} <= s3
    assert "ray" not in s3 and "PyYAML" not in s3


def test_it_is_stored_once_and_built_once(tmp_path):
    store, cache = RunStore(tmp_path / "store"), tmp_path / "cache"
    first = site_bundle(store, cache_dir=cache)
    zipped = cache / f"{first.sha256}.zip"
    built_at = zipped.stat().st_mtime_ns
    second = site_bundle(store, cache_dir=cache)
    assert second == first and zipped.stat().st_mtime_ns == built_at  # from the cache
    assert [p.name for p in (tmp_path / "store" / "bundles").iterdir()] == [f"{first.sha256}.zip"]
    assert store.local_path("bundles", f"{first.sha256}.zip").read_bytes() == zipped.read_bytes()


def test_the_zip_is_deterministic(tmp_path):
    store = RunStore(tmp_path / "store")
    one = site_bundle(store, write=False, cache_dir=tmp_path / "a")
    other = site_bundle(store, write=False, cache_dir=tmp_path / "b")
    assert one.sha256 == other.sha256


def test_an_edited_file_gets_a_new_zip_and_hash(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("X = 1\n")
    entries = {"flyray/mod.py": module}
    sha, _ = sitebundle._cached_zip(entries, tmp_path / "cache")
    assert sitebundle._cached_zip(entries, tmp_path / "cache")[0] == sha
    module.write_text("X = 22\n")  # an editable checkout edited: size and mtime change
    assert sitebundle._cached_zip(entries, tmp_path / "cache")[0] != sha


def test_compiled_distributions_are_left_out():
    assert sitebundle._not_shippable(distribution("pyyaml")) == "compiled"
    assert sitebundle._not_shippable(distribution("fsspec")) is None
