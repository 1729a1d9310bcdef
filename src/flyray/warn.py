"""flyray's warning category, for arguments it accepts (as Flyte does) but cannot honour."""

from __future__ import annotations

import warnings

__all__ = ["FlyrayWarning", "warn_no_effect"]


class FlyrayWarning(UserWarning):
    """An argument was accepted but has no effect where the run goes; filter it by this class."""


def warn_no_effect(field: str, value: object, where: str, why: str, *, stacklevel: int = 4) -> None:
    """Warn that ``field`` has no effect ``where`` (e.g. "in local mode"), and why.

    ``stacklevel`` points the warning at the user's call (4: user, API, its helper, here).
    """
    warnings.warn(
        f"{field}={value!r} has no effect {where}: {why}", FlyrayWarning, stacklevel=stacklevel
    )
