"""Site bundles: flyray and the pure-Python packages its job driver needs, shipped with each job.

A cluster then needs only Ray. Every ``cluster`` and ``kuberay`` job gets, first in its runtime
env's ``py_modules``, one zip of the ``flyray`` package this process runs plus the
distributions its driver imports that a ``ray[default]`` install lacks:

    closure(flyray's requirements + the run store's fsspec backend, e.g. s3fs for s3://)
      minus closure(ray[default])

both taken from this environment's installed distributions (``importlib.metadata``).
Distributions with compiled files (or installed editable, so that their files are elsewhere)
are left out and named in ``SiteBundle.left_out``: the cluster must have them.

The zip follows the code bundle's rules (``store/bundle.py``): deterministic, every entry under
one top folder (``site/``), which Ray strips for a remote zip URI; Ray's py_modules plugin puts
the unpacked folder, which holds ``flyray/`` and the other packages side by side, on the
PYTHONPATH of the driver and the workers, ahead of the cluster's own site-packages. It is
stored once in the run store under its sha256, next to the code bundles.

Zipping a few thousand files takes a while, so the zip is cached on this machine
(``FLYRAY_SITE_CACHE``, else ``~/.cache/flyray/site-bundles``) under a key made of every
shipped file's path, size and mtime: an edited editable flyray gets a new key, hence a new
zip and a new sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flyray.store.bundle import zip_entries
from flyray.store.runstore import RunStore

if TYPE_CHECKING:
    from importlib.metadata import Distribution

    from packaging.requirements import Requirement

__all__ = ["SITE_TOP", "SiteBundle", "site_bundle", "site_cache_dir", "site_distributions"]

SITE_TOP = "site"  # the single top-level folder of a site bundle zip
_FORMAT = 1  # bump when the zip's layout changes: old cache entries are then not used
_COMPILED = (".so", ".pyd", ".dylib")
_CLUSTER_HAS = "ray[default]"  # what a Ray-only cluster is assumed to have installed


@dataclass(frozen=True)
class SiteBundle:
    """A site bundle: its URI in the store, sha256, size, what it holds and what it left out."""

    uri: str
    sha256: str
    size: int
    distributions: tuple[str, ...]  # "name==version", flyray first
    left_out: tuple[str, ...]  # "name==version (why)": the cluster must have these


def site_bundle(
    store: RunStore, *, write: bool = True, cache_dir: Path | None = None
) -> SiteBundle:
    """The site bundle for jobs that use ``store``, stored there (once) when ``write``.

    ``write=False`` (``flyray render``) only names it: the zip is built (or found in the local
    cache) to know its sha256, and nothing goes to the store.
    """
    shipped, left_out = site_distributions(store.root)
    entries = site_entries(shipped)
    sha, path = _cached_zip(entries, cache_dir or site_cache_dir())
    if write and not store.has_bundle(sha):
        store.put_bundle(sha, path.read_bytes())
    flyray_version = f"flyray=={_flyray_version()}"
    return SiteBundle(
        uri=store.uri("bundles", f"{sha}.zip"),
        sha256=sha,
        size=path.stat().st_size,
        distributions=(flyray_version, *(f"{d.metadata['Name']}=={d.version}" for d in shipped)),
        left_out=tuple(left_out),
    )


def site_cache_dir() -> Path:
    """Where built site bundles are kept: ``FLYRAY_SITE_CACHE`` or ~/.cache/flyray/site-bundles."""
    configured = os.environ.get("FLYRAY_SITE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "flyray" / "site-bundles"


def site_distributions(store_root: str) -> tuple[list[Distribution], list[str]]:
    """The distributions to ship besides flyray (sorted by name), and those left out (why).

    ``store_root`` picks the fsspec backend the driver needs (nothing extra for local paths).
    """
    from packaging.requirements import Requirement

    wanted = _closure([*_flyray_requirements(), *_backend_requirements(store_root)])
    present = _closure([Requirement(_CLUSTER_HAS)])
    shipped, left_out = [], []
    for name in sorted(set(wanted) - set(present) - {"flyray"}):
        dist = wanted[name]
        why = _not_shippable(dist)
        if why:
            left_out.append(f"{dist.metadata['Name']}=={dist.version} ({why})")
        else:
            shipped.append(dist)
    return shipped, left_out


def site_entries(shipped: list[Distribution]) -> dict[str, Path | bytes]:
    """The zip's entries: flyray's package and a minimal dist-info, then every shipped file."""
    entries = _flyray_entries()
    for dist in shipped:
        base = Path(str(dist.locate_file("")))
        for item in dist.files or []:
            if not _shipped_file(item.parts):
                continue
            path = base / Path(*item.parts)
            if path.is_file():
                entries[Path(*item.parts).as_posix()] = path
    return entries


# --- flyray itself ----------------------------------------------------------------------


def _flyray_version() -> str:
    from flyray._version import __version__

    return __version__


def _flyray_entries() -> dict[str, Path | bytes]:
    """The flyray package this process imports (an editable checkout's too), and a dist-info.

    The dist-info carries the version and flyray's entry points, so that the cluster's
    ``importlib.metadata`` sees the shipped flyray.
    """
    import flyray

    package = Path(flyray.__file__).parent
    entries: dict[str, Path | bytes] = {
        f"flyray/{path.relative_to(package).as_posix()}": path
        for path in sorted(package.rglob("*"))
        if path.is_file() and _shipped_file(path.relative_to(package).parts)
    }
    version = _flyray_version()
    info = f"flyray-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: flyray\nVersion: {version}\n"
    entries[f"{info}/METADATA"] = metadata.encode()
    points = _installed_flyray_text("entry_points.txt")
    if points:
        entries[f"{info}/entry_points.txt"] = points.encode()
    return entries


def _installed_flyray_text(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        return distribution("flyray").read_text(name)
    except PackageNotFoundError:
        return None


def _flyray_requirements() -> list[Requirement]:
    """flyray's own requirements (no extras), from its installed metadata."""
    from packaging.requirements import Requirement

    text = _installed_flyray_text("METADATA") or ""
    found = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                found.append(req)
    return found


def _backend_requirements(store_root: str) -> list[Requirement]:
    """The distribution behind the fsspec backend of ``store_root`` (s3fs for s3://), if any."""
    from importlib.metadata import packages_distributions

    from fsspec.registry import known_implementations
    from packaging.requirements import Requirement

    protocol = store_root.split("://", 1)[0] if "://" in store_root else "file"
    module = known_implementations.get(protocol, {}).get("class", "fsspec").split(".", 1)[0]
    if module == "fsspec":
        return []
    return [Requirement(name) for name in packages_distributions().get(module, [])]


# --- distributions ----------------------------------------------------------------------


def _closure(requirements: list[Requirement]) -> dict[str, Distribution]:
    """Every installed distribution the requirements reach, by normalised name."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    found: dict[str, Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        key = (_normalise(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue  # not installed here: an optional dependency, or one for another platform
        found[key[0]] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            extras = (*req.extras, "")
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _not_shippable(dist: Distribution) -> str | None:
    """Why ``dist`` cannot go into a site bundle (compiled, editable), or None."""
    if any(item.suffix in _COMPILED for item in dist.files or []):
        return "compiled"
    if "Root-Is-Purelib: false" in (dist.read_text("WHEEL") or ""):
        return "compiled"
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        return "editable"
    return None


def _shipped_file(parts: tuple[str, ...]) -> bool:
    """False for files outside site-packages (scripts), caches and compiled Python."""
    return (
        bool(parts)
        and parts[0] != ".."
        and "__pycache__" not in parts
        and not (parts[-1].endswith(".pyc"))
    )


# --- the local cache --------------------------------------------------------------------


def _cached_zip(entries: dict[str, Path | bytes], cache: Path) -> tuple[str, Path]:
    """(sha256, path) of the zip of ``entries``, built only when the cache has no zip for them."""
    key = _cache_key(entries)
    index = cache / f"{key}.json"
    try:
        sha = json.loads(index.read_text())["sha256"]
        path = cache / f"{sha}.zip"
        if path.is_file():
            return sha, path
    except (OSError, ValueError, KeyError):
        pass
    data = zip_entries(entries, top=SITE_TOP)
    sha = hashlib.sha256(data).hexdigest()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{sha}.zip"
    _write_atomic(path, data)
    _write_atomic(index, json.dumps({"sha256": sha}).encode())
    return sha, path


def _cache_key(entries: dict[str, Path | bytes]) -> str:
    """A digest of what the zip would hold: paths with sizes and mtimes, or contents."""
    digest = hashlib.sha256(f"{_FORMAT} {sys.version_info[:2]}".encode())
    for rel, source in sorted(entries.items()):
        if isinstance(source, Path):
            info = source.stat()
            digest.update(f"\0{rel}\0{info.st_size}\0{info.st_mtime_ns}".encode())
        else:
            digest.update(f"\0{rel}\0".encode() + hashlib.sha256(source).digest())
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` so that a concurrent reader sees the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
