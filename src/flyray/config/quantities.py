"""Kubernetes resource quantities ("500m", "2Gi", "1e3") parsed to exact decimals."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flyray.errors import ConfigError

_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[a-zA-Z]*|[eE][-+]?[0-9]+)$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(field: str, value: object) -> Decimal:
    """Parse a non-negative Kubernetes quantity (or a plain number) to a Decimal."""
    if isinstance(value, bool):
        raise ConfigError(field, value, "must be a number or a Kubernetes quantity such as '2Gi'")
    if isinstance(value, (int, float)):
        if value < 0 or value != value or value in (float("inf"),):
            raise ConfigError(field, value, "must be a finite number >= 0")
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ConfigError(
            field,
            value,
            "must be a Kubernetes quantity: a number with an optional suffix "
            "(m, k, M, G, T, Ki, Mi, Gi, Ti, ...), e.g. '500m', '2', '4Gi'",
        )
    number, suffix = Decimal(match["number"]), match["suffix"]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    try:
        return number * Decimal(f"1{suffix}")
    except InvalidOperation:
        raise ConfigError(field, value, f"has an unknown quantity suffix {suffix!r}") from None


def format_cpu(cpus: Decimal) -> str:
    """Render CPUs the way Kubernetes prints them: whole cores as "2", fractions as "500m"."""
    if cpus == cpus.to_integral_value():
        return str(int(cpus))
    millis = cpus * 1000
    if millis != millis.to_integral_value():
        raise ValueError(f"{cpus} CPUs is finer than a millicore")
    return f"{int(millis)}m"
