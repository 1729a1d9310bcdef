"""Values in the run store: cloudpickle behind a one-line JSON header of who wrote them.

A pickle is only readable by the Python minor version and the flyray version that wrote it
(cloudpickle pickles functions by value, with their bytecode). The header lets the reader say
so in a sentence instead of failing somewhere inside ``pickle`` with a traceback.
"""

from __future__ import annotations

import json
import platform
from typing import Any

from flyray._version import __version__
from flyray.errors import RunStoreError

__all__ = ["FORMAT_VERSION", "dumps", "loads"]

FORMAT_VERSION = 1
_MAX_HEADER = 1024  # the header is a short JSON line; anything longer is not ours


def dumps(value: Any) -> bytes:
    """``value`` as a header line plus its cloudpickle."""
    import cloudpickle

    header = {"format": FORMAT_VERSION, "python": platform.python_version(), "flyray": __version__}
    return json.dumps(header, sort_keys=True).encode() + b"\n" + cloudpickle.dumps(value)


def loads(data: bytes, *, what: str) -> Any:
    """The value in ``data``; ``what`` names it in errors (e.g. "inputs of run r1234")."""
    import pickle

    header, body = _split(data, what=what)
    _check_versions(header, what=what)
    try:
        return pickle.loads(body)
    except Exception as exc:  # any error inside pickle means: cannot be read back
        raise RunStoreError(
            f"cannot read the {what}: unpickling failed with {type(exc).__name__}: {exc}"
            " (the data is corrupt, or it refers to code that cannot be imported here)"
        ) from None


def _split(data: bytes, *, what: str) -> tuple[dict[str, Any], bytes]:
    """The parsed header and the pickle after it; RunStoreError when there is no header."""
    line, newline, _ = data[:_MAX_HEADER].partition(b"\n")
    try:
        header = json.loads(line) if newline else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or not {"format", "python", "flyray"} <= header.keys():
        raise RunStoreError(
            f"cannot read the {what}: the data is corrupt (no flyray header);"
            " run the task again to write it anew"
        )
    return header, data[len(line) + 1 :]


def _check_versions(header: dict[str, Any], *, what: str) -> None:
    """Raise RunStoreError unless this process can read what ``header`` says wrote the data."""
    here = {"format": FORMAT_VERSION, "python": platform.python_version(), "flyray": __version__}
    same_python = _minor(str(header["python"])) == _minor(here["python"])
    if header["format"] == FORMAT_VERSION and same_python and header["flyray"] == __version__:
        return
    raise RunStoreError(
        f"cannot read the {what}: it was written by Python {header['python']} with flyray"
        f" {header['flyray']} (format {header['format']}), and this is Python {here['python']}"
        f" with flyray {here['flyray']} (format {FORMAT_VERSION}); read it with the same Python"
        " minor version and flyray version, e.g. use the same image on the cluster"
    )


def _minor(version: str) -> str:
    """The major.minor part of a version: 3.11.7 -> 3.11."""
    return ".".join(version.split(".")[:2])
