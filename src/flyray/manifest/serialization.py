"""Manifests as bytes: one input, one output (``None`` dropped, keys sorted, no aliases).

``clean`` makes a manifest canonical; ``dump_yaml`` and ``dump_json`` write it in its own key
order, so the same manifest always gives the same bytes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["clean", "dump_json", "dump_yaml"]


def clean(value: Any) -> Any:
    """A copy without ``None`` values, every mapping's keys sorted: one input, one output."""
    if isinstance(value, Mapping):
        return {key: clean(value[key]) for key in sorted(value) if value[key] is not None}
    if isinstance(value, (list, tuple)):
        return [clean(item) for item in value if item is not None]
    return value


def dump_yaml(manifest: Mapping[str, Any]) -> str:
    """Block-style YAML in the manifest's own key order; multi-line strings as ``|`` blocks."""
    return _dump(manifest, _dumper())


def dump_json(manifest: Mapping[str, Any]) -> str:
    """JSON with a two-space indent, in the manifest's own key order."""
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def _dump(manifest: Mapping[str, Any], dumper: Any) -> str:
    import yaml

    return yaml.dump(
        manifest,
        Dumper=dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )


@functools.cache
def _dumper() -> Any:
    """A safe dumper without anchors or aliases that writes multi-line strings as blocks.

    libyaml's emitter when PyYAML has it (about 5x faster), else the pure-Python one; both
    write the same bytes for manifests (tests/manifest checks it on every golden file).
    """
    import yaml

    return _safe_dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper))


def _safe_dumper(base: Any) -> Any:
    class Dumper(base):  # type: ignore[misc, valid-type]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def represent_str(dumper: Any, data: str) -> Any:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, represent_str)
    return Dumper
