"""Manifests as bytes: deterministic, canonical (no None, sorted keys), YAML that loads back.

Every configuration of ``cases.py`` is checked, and strings that YAML would misread.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from flyray.manifest import serialization
from flyray.manifest.serialization import dump_json, dump_yaml
from tests.manifest.cases import CASES, render, rendered, runtime_env


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic(name: str) -> None:
    first, second = rendered(name), rendered(name)
    assert first is not second
    assert dump_yaml(first).encode() == dump_yaml(second).encode()
    assert dump_json(first).encode() == dump_json(second).encode()


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_none_and_sorted_keys(name: str) -> None:
    def walk(value: Any, where: str) -> None:
        assert value is not None, where
        if isinstance(value, dict):
            assert list(value) == sorted(value), where
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(rendered(name), "manifest")


@pytest.mark.parametrize("name", sorted(CASES))
def test_yaml_and_json_load_back(name: str) -> None:
    manifest = rendered(name)
    assert yaml.safe_load(dump_yaml(manifest)) == manifest
    assert json.loads(dump_json(manifest)) == manifest
    assert "&id" not in dump_yaml(manifest)  # no anchors or aliases


TRICKY = {
    "EMPTY": "",
    "BOOLISH": "yes",
    "NUMBERISH": "0123",
    "NULLISH": "null",
    "COLON": "a: b",
    "HASH": "x #y",
    "LEADING": "  spaced",
    "UNICODE": "naïve ☃",
    "MULTILINE": "line one\n  indented\nlast\n",
    "TRAILING": "trailing space \nnext",
    "QUOTES": 'it\'s "quoted"',
    "DOLLAR": "$HOME/${X}",
}


def tricky() -> dict[str, Any]:
    return render(runtime_env()[0], env_vars=TRICKY, entrypoint=["python", *TRICKY.values()])


def test_tricky_strings_survive_yaml() -> None:
    manifest = tricky()
    assert yaml.safe_load(dump_yaml(manifest)) == manifest
    assert (
        yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])["env_vars"]["MULTILINE"]
        == (TRICKY["MULTILINE"])
    )


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML built without libyaml")
@pytest.mark.parametrize("name", [*sorted(CASES), "tricky"])
def test_libyaml_and_pure_python_write_the_same_bytes(name: str) -> None:
    manifest = tricky() if name == "tricky" else rendered(name)
    fast = serialization._dump(manifest, serialization._safe_dumper(yaml.CSafeDumper))
    assert fast == serialization._dump(manifest, serialization._safe_dumper(yaml.SafeDumper))
    assert fast == dump_yaml(manifest)
