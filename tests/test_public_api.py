"""The public API: what flyray and its Ray plugin export, and what importing them costs."""

import subprocess
import sys

import flyray
import flyray.plugins.ray as ray_plugin


def test_exports_are_sorted_and_present():
    for module in (flyray, ray_plugin):
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


def test_spec_import_paths():
    from flyray.plugins.ray.task import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

    assert RayJobConfig is ray_plugin.RayJobConfig
    assert (HeadNodeConfig, WorkerNodeConfig) == (
        ray_plugin.HeadNodeConfig,
        ray_plugin.WorkerNodeConfig,
    )


def test_import_flyray_loads_no_heavy_dependency():
    code = (
        "import sys, flyray, flyray.plugins.ray; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'ray', 'kubernetes', 'fsspec', 'boto3', 'yaml', 'asyncio'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
