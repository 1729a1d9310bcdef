"""Command-line options from a task's signature: int, float, str, bool, JSON for list/dict."""

from __future__ import annotations

import inspect
import json
import types
import typing
from typing import Any

import click

__all__ = ["options_for"]


class JsonParam(click.ParamType):
    """A JSON value such as ``[1, 2]`` or ``{"a": 1}``, checked against list or dict."""

    name = "json"

    def __init__(self, expected: type) -> None:
        self.expected = expected

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(f"{value!r} is not valid JSON ({exc.msg})", param, ctx)
        if not isinstance(parsed, self.expected):
            self.fail(f"{value!r} is not a JSON {self.expected.__name__}", param, ctx)
        return parsed


_SIMPLE: dict[Any, click.ParamType] = {
    int: click.INT,
    float: click.FLOAT,
    str: click.STRING,
    bool: click.BOOL,
}


def options_for(func: Any, *, required: bool = True) -> list[click.Option]:
    """One ``--name`` option per parameter of ``func``; those without a default are ``required``."""
    hints = typing.get_type_hints(func)
    options = []
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, str)
        no_default = param.default is inspect.Parameter.empty
        flags = [f"--{name}"]
        if "_" in name:
            flags.append(f"--{name.replace('_', '-')}")
        extra = {} if no_default else {"default": param.default, "show_default": True}
        options.append(
            click.Option(
                [*flags, name],
                type=_param_type(annotation),
                required=required and no_default,
                help=_type_label(annotation),
                **extra,
            )
        )
    return options


def _param_type(annotation: Any) -> click.ParamType:
    annotation = _strip_optional(annotation)
    if annotation in _SIMPLE:
        return _SIMPLE[annotation]
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple, set):
        return JsonParam(list)
    if origin is dict:
        return JsonParam(dict)
    return click.STRING


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _type_label(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
