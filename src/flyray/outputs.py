"""``ActionOutputs``: a run's outputs as Flyte gives them, a tuple with ``o0``, ``o1``, ..."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ActionOutputs"]


class ActionOutputs(tuple):  # type: ignore[type-arg]
    """The outputs of a run: one element per output, also as ``o0``, ``o1``, ... attributes.

    Like Flyte's: a task that returns a tuple has one output per element, any other value
    (``None`` too) is the one output ``o0``; ``named_outputs`` maps names to values.
    """

    _fields: tuple[str, ...]

    def __new__(cls, data: Iterable[Any], fields: Sequence[str] | None = None) -> ActionOutputs:
        """Outputs ``data``, named ``fields`` (default ``o0``, ``o1``, ...)."""
        obj = super().__new__(cls, data)
        obj._fields = (
            tuple(fields) if fields is not None else tuple(f"o{i}" for i in range(len(obj)))
        )
        for name, value in zip(obj._fields, obj, strict=True):
            setattr(obj, name, value)
        return obj

    @classmethod
    def of(cls, value: Any) -> ActionOutputs:
        """The outputs of a task that returned ``value``: a tuple is split, anything else is o0."""
        return cls(value if isinstance(value, tuple) else (value,))

    @property
    def named_outputs(self) -> dict[str, Any]:
        """``{"o0": ..., "o1": ...}``."""
        return dict(zip(self._fields, self, strict=True))

    def __repr__(self) -> str:
        parts = (
            f'{name}="{value}"' if isinstance(value, str) else f"{name}={value}"
            for name, value in zip(self._fields, self, strict=True)
        )
        return f"ActionOutputs({', '.join(parts)})"
