"""Ray-only virtualenvs: which images map to one, and that a built one is reused."""

from __future__ import annotations

import sys

import pytest

from flyray.sandbox.rayvenv import image_bin_dir, image_ray_version, ray_venv


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("rayproject/ray:2.60.0-py311", "2.60.0"),
        ("docker.io/rayproject/ray:2.60.0", "2.60.0"),
        ("rayproject/ray:2.41.0-py310-cpu", "2.41.0"),
        ("rayproject/ray:latest", None),
        ("rayproject/ray-ml:2.60.0-py311", None),
        ("my.registry/ray:2.60.0-py311", None),
        ("", None),
    ],
)
def test_only_stock_ray_images_with_a_version_map_to_a_venv(image, version):
    assert image_ray_version(image) == version


def test_other_images_keep_the_kubelets_own_python():
    assert image_bin_dir("my.registry/flyray:1") is None
    assert image_bin_dir(None) is None


def test_a_built_venv_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYRAY_VENV_CACHE", str(tmp_path))
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    built = tmp_path / f"image-2.60.0-py{minor}"
    built.mkdir()
    (built / ".complete").write_text("ray[default]==2.60.0 boto3 smart_open[s3]\n")
    lines: list[str] = []
    assert ray_venv("2.60.0", image=True, on_progress=lines.append) == built
    assert image_bin_dir("rayproject/ray:2.60.0-py311") == built / "bin"
    assert lines == []  # nothing was built
