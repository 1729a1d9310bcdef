"""A runtime env's ``py_modules`` made readable by any cluster: local folders become store zips.

A submitter pod or a remote head cannot read the caller's disk, so every ``py_modules`` entry
that is a local folder is zipped the way code bundles are (``store/bundle.py``: deterministic,
under one top folder that Ray strips, the folder's own name inside it so that ``import <name>``
works) and stored once under its sha256; the entry becomes that zip's URI. URIs pass through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from flyray.errors import ConfigError
from flyray.store.bundle import bundle_files, zip_entries
from flyray.store.runstore import RunStore

__all__ = ["store_py_modules"]

_FIELD = "runtime_env.py_modules"


def store_py_modules(modules: object, store: RunStore, *, write: bool = True) -> list[str]:
    """``modules`` with each local folder replaced by its zip's URI in ``store`` (stored if
    ``write``; ``flyray render`` only names it). Relative folders are taken from the cwd, as
    Ray's job submission takes them."""
    if modules is None:
        return []
    if isinstance(modules, str) or not isinstance(modules, Sequence):
        raise ConfigError(_FIELD, modules, "must be a list of folders or URIs")
    return [_entry(f"{_FIELD}[{i}]", item, store, write) for i, item in enumerate(modules)]


def _entry(field: str, item: object, store: RunStore, write: bool) -> str:
    if not isinstance(item, str) or not item:
        raise ConfigError(field, item, "must be a folder or a URI (a non-empty string)")
    if "://" in item:
        return item
    folder = Path(item).expanduser().absolute()
    if not folder.is_dir():
        rule = "must be an existing folder (a Python package) or a URI such as s3://.../mod.zip"
        raise ConfigError(field, item, rule)
    entries = {f"{folder.name}/{rel}": path for rel, path in bundle_files(folder).items()}
    data = zip_entries(entries)
    sha = hashlib.sha256(data).hexdigest()
    if write:
        return store.put_bundle(sha, data)
    return store.uri("bundles", f"{sha}.zip")
