"""Values in the run store: round trips, and clear errors for other versions or corrupt data."""

from __future__ import annotations

import json
import platform

import pytest

from flyray import __version__
from flyray.errors import RunStoreError
from flyray.store.serialization import FORMAT_VERSION, dumps, loads


def _with_header(data: bytes, **changes: object) -> bytes:
    """``data`` with some header fields replaced, as another Python or flyray would write it."""
    line, _, body = data.partition(b"\n")
    header = {**json.loads(line), **changes}
    return json.dumps(header).encode() + b"\n" + body


def test_round_trip_of_values_and_functions() -> None:
    factor = 3

    def scale(x: int) -> int:
        return x * factor

    value = ((1, "two", [3.0]), {"b": None, "fn": scale, "fmt": lambda s: s.upper()})
    args, kwargs = loads(dumps(value), what="inputs of run r1")
    assert args == (1, "two", [3.0])
    assert kwargs["b"] is None
    assert kwargs["fn"](2) == 6
    assert kwargs["fmt"]("x") == "X"


def test_header_names_the_writer() -> None:
    header = json.loads(dumps(42).partition(b"\n")[0])
    assert header == {
        "format": FORMAT_VERSION,
        "python": platform.python_version(),
        "flyray": __version__,
    }


def test_another_patch_release_of_python_can_read() -> None:
    major, minor, _ = platform.python_version_tuple()
    assert loads(_with_header(dumps([1, 2]), python=f"{major}.{minor}.0"), what="x") == [1, 2]


def test_another_python_minor_version_is_a_clear_error() -> None:
    data = _with_header(dumps({"a": 1}), python="3.9.18")
    with pytest.raises(RunStoreError) as info:
        loads(data, what="inputs of run r1234")
    message = str(info.value)
    assert "inputs of run r1234" in message
    assert "Python 3.9.18" in message
    assert f"Python {platform.python_version()}" in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_another_flyray_version_is_a_clear_error() -> None:
    data = _with_header(dumps({"a": 1}), flyray="0.0.0-old")
    with pytest.raises(RunStoreError, match=r"outputs of run r9.*flyray 0\.0\.0-old") as info:
        loads(data, what="outputs of run r9")
    assert f"flyray {__version__}" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a flyray file at all",
        b"\x80\x04\x95 a bare pickle without a header",
        b'{"format": 1}\n',  # a header missing fields
        b"[1, 2]\n",
    ],
)
def test_data_without_a_header_is_corrupt(data: bytes) -> None:
    with pytest.raises(RunStoreError, match=r"cannot read the outputs of run r1: .*corrupt"):
        loads(data, what="outputs of run r1")


def test_a_broken_pickle_is_corrupt_without_a_pickle_traceback() -> None:
    good = dumps(list(range(100)))
    broken = good[: len(good) // 2]
    with pytest.raises(RunStoreError, match=r"inputs of run r2: unpickling failed") as info:
        loads(broken, what="inputs of run r2")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
