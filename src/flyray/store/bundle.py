"""Code bundles: the task's project as a deterministic zip, stored once under its sha256.

A Ray job gets the bundle as ``runtime_env={"working_dir": <bundle uri>}``; Ray unpacks it and
starts the job's driver (``python -m flyray.entrypoint``) in it, so the project root is the
driver's cwd and the task file is found at ``Bundle.task_file`` relative to it.

The zip layout Ray 2.60 needs, found by experiment with real jobs (``file://`` URIs) and in
``ray/_private/runtime_env/packaging.py``: for a remote zip URI (``file://``, ``s3://``,
``gs://``, ``https://`` ...) Ray unpacks the archive and then, *if every entry lies under one
single top-level folder*, moves that folder's content up one level (``__MACOSX`` aside); a zip
with files at its root is used as it is. Both layouts work, but "files at the root" breaks when
the project itself holds a single folder and no top-level file (e.g. only ``app/task.py``): Ray
strips ``app/`` and the task file is no longer where flyray looks for it. So every entry goes
under one fixed folder, ``bundle/``; Ray strips exactly that one level and the job's cwd is the
project root, whatever the project looks like. Ray caches unpacked packages per node by URI,
which content addressing makes safe: changed code gets a new sha256, hence a new URI.

Deterministic: entries sorted by path, timestamps 1980-01-01 00:00, mode 0644 (0755 for files
the owner may execute; Ray restores these modes), Unix as the creating system, deflate at zlib's
default level. The same files give the same sha256 on any machine with the same zlib.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flyray.errors import RunStoreError
from flyray.store.runstore import RunStore

if TYPE_CHECKING:
    from pathspec import PathSpec

__all__ = [
    "BUNDLE_TOP",
    "Bundle",
    "bundle_files",
    "create_bundle",
    "pack_bundle",
    "project_root",
    "unpack_bundle",
    "zip_entries",
]

BUNDLE_TOP = "bundle"  # the single top-level folder of every bundle zip
DEFAULT_MAX_BYTES = 100 * 2**20
_ROOT_MARKERS = ("pyproject.toml", ".git")
_EXCLUDED_DIRS = frozenset(
    {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".flyray"}
)
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """A code bundle: its URI in the store, sha256, size, project root and task file (relative)."""

    uri: str
    sha256: str
    size: int
    root: Path
    task_file: str


def create_bundle(
    task_file: Path, store: RunStore, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Bundle:
    """Zip the project of ``task_file`` and store it (unless stored already) in ``store``."""
    bundle, data = pack_bundle(task_file, store, max_bytes=max_bytes)
    if not store.has_bundle(bundle.sha256):
        store.put_bundle(bundle.sha256, data)
    return bundle


def pack_bundle(
    task_file: Path, store: RunStore, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[Bundle, bytes]:
    """Zip the project of ``task_file``; the bundle with the URI it has in ``store``, and the zip.

    Nothing is written: ``flyray render`` shows the URI a run would store the bundle at.
    """
    task_path = Path(task_file).resolve()
    root = project_root(task_path)
    files = bundle_files(root, exclude=_store_folders(store))
    rel_task = task_path.relative_to(root).as_posix()
    if rel_task not in files:
        raise RunStoreError(
            f"the task file {task_path} is left out of the code bundle of {root}"
            " (by .gitignore or flyray's excludes); remove it from those"
        )
    _check_size(root, files, max_bytes)
    data = zip_entries(files)
    sha = hashlib.sha256(data).hexdigest()
    uri = store.uri("bundles", f"{sha}.zip")
    return Bundle(uri=uri, sha256=sha, size=len(data), root=root, task_file=rel_task), data


def unpack_bundle(uri: str, dest: Path) -> Path:
    """Fetch the bundle at ``uri`` and unpack its ``bundle/`` folder into ``dest``, as Ray does.

    For a pod that runs flyray's entrypoint without a Ray job around it (a task on an existing
    cluster). The content is checked against the sha256 its name carries.
    """
    import fsspec

    with fsspec.open(uri, "rb") as handle:
        data = handle.read()
    expected = uri.rsplit("/", 1)[-1].removesuffix(".zip")
    if hashlib.sha256(data).hexdigest() != expected:
        raise RunStoreError(f"the code bundle {uri} does not match its sha256: it was changed")
    dest = Path(dest)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            rel = Path(info.filename).relative_to(BUNDLE_TOP)
            if info.is_dir() or ".." in rel.parts or rel.is_absolute():
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
    return dest


def project_root(task_file: Path) -> Path:
    """The nearest folder at or above ``task_file`` with a pyproject.toml or .git, else its own."""
    start = Path(task_file).resolve().parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
    return start


def bundle_files(root: Path, *, exclude: tuple[Path, ...] = ()) -> dict[str, Path]:
    """The files that go into the bundle of ``root``: {posix path relative to root: path}.

    Symlinks to files are followed; symlinks to folders are not (they may point anywhere).
    """
    ignored = _gitignore(root)
    skip = {Path(p).resolve() for p in exclude}
    found = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        rel = here.relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        dirs[:] = sorted(
            d for d in dirs if not _skip_dir(here / d, f"{prefix}{d}/", ignored=ignored, skip=skip)
        )
        for name in names:
            path = here / name
            if _keep_file(path, f"{prefix}{name}", ignored=ignored):
                found[f"{prefix}{name}"] = path
    return dict(sorted(found.items()))


def _skip_dir(path: Path, rel: str, *, ignored: PathSpec | None, skip: set[Path]) -> bool:
    """True for folders left out: tools' caches, virtualenvs, the store, .gitignore'd ones."""
    if path.name in _EXCLUDED_DIRS or (path / "pyvenv.cfg").exists():
        return True
    if path.is_symlink():
        return True
    return path.resolve() in skip or (ignored is not None and ignored.match_file(rel))


def _keep_file(path: Path, rel: str, *, ignored: PathSpec | None) -> bool:
    """True for regular files that are not compiled Python, .git files or .gitignore'd."""
    if path.name == ".git" or path.suffix == ".pyc":
        return False
    if not path.is_file():  # sockets, fifos, broken symlinks
        return False
    return ignored is None or not ignored.match_file(rel)


def _gitignore(root: Path) -> PathSpec | None:
    """The root's .gitignore as a pathspec matcher, or None without one."""
    path = root / ".gitignore"
    if not path.is_file():
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(path.read_text(errors="replace").splitlines())


def _store_folders(store: RunStore) -> tuple[Path, ...]:
    """The store's own folder, left out when it lies inside the project."""
    return (store.local_path(),) if store.is_local else ()


def _check_size(root: Path, files: dict[str, Path], max_bytes: int) -> None:
    """RunStoreError naming the root, the total and the 5 largest files when over the cap."""
    sizes = {rel: path.stat().st_size for rel, path in files.items()}
    total = sum(sizes.values())
    if total <= max_bytes:
        return
    largest = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:5]
    listed = ", ".join(f"{rel} ({_human_size(size)})" for rel, size in largest)
    raise RunStoreError(
        f"the code bundle of {root} would hold {_human_size(total)} in {len(files)} files, over the"
        f" limit of {_human_size(max_bytes)}; largest files: {listed}. Leave data out of the bundle"
        f" with {root / '.gitignore'}, or move it out of the project and read it from storage"
    )


def _human_size(size: int) -> str:
    """A size for messages: MiB, or KiB and bytes for small files."""
    if size < 2**10:
        return f"{size} B"
    return f"{size / 2**10:.1f} KiB" if size < 2**20 else f"{size / 2**20:.1f} MiB"


def zip_entries(entries: Mapping[str, Path | bytes], *, top: str = BUNDLE_TOP) -> bytes:
    """The deterministic zip of ``entries`` ({posix path: file or content}), each under ``top/``.

    Shared by code bundles, site bundles and zipped ``py_modules`` (store.sitebundle).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, source in sorted(entries.items()):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that Ray restores external_attr as a file mode
            executable = isinstance(source, Path) and source.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            archive.writestr(info, source.read_bytes() if isinstance(source, Path) else source)
    return buffer.getvalue()
