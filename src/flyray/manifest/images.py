"""Default container images: the official Ray image that matches the local Ray and Python.

A cluster whose Ray or Python differs from the driver's fails in confusing ways (pickled
functions, wheel mismatches), so the default image mirrors this interpreter.
"""

from __future__ import annotations

import sys

from flyray.config.image import AUTO, Image
from flyray.errors import ManifestError

__all__ = [
    "RAY_IMAGE_REPOSITORY",
    "container_image",
    "default_image",
    "default_image_for",
    "ray_version",
]

RAY_IMAGE_REPOSITORY = "rayproject/ray"


def ray_version() -> str:
    """The installed Ray's version, read from package metadata (Ray itself is not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ray")
    except PackageNotFoundError:
        raise ManifestError(
            "Ray is not installed here, so flyray cannot choose a matching Ray image: "
            "install ray or give the environment an image"
        ) from None


def default_image(python: tuple[int, int] = sys.version_info[:2], *, ray: str | None = None) -> str:
    """``rayproject/ray:<ray>-py<major><minor>``, e.g. ``rayproject/ray:2.60.0-py311``.

    The official tags are ``{Ray version}[-{Python}][-{platform}]``; without a platform the
    image is the CPU one. A development build of Ray maps to the ``nightly`` tag.
    """
    version = ray if ray is not None else ray_version()
    tag = "nightly" if "dev" in version else version
    major, minor = python
    return f"{RAY_IMAGE_REPOSITORY}:{tag}-py{major}{minor}"


def container_image(image: object) -> str | None:
    """The container image an environment's ``image`` names itself, else None (the default).

    A string is that image and ``Image.from_base(x)`` is ``x``; ``None``, ``"auto"`` and
    ``Image.from_debian_base()`` name none, so ``--image`` (the ``image`` setting) or the
    official Ray image fills in.
    """
    if isinstance(image, Image):
        return image.base_image
    if isinstance(image, str) and image != AUTO:
        return image
    return None


def default_image_for(image: object) -> str:
    """The official Ray image for this Ray and the Python an ``Image`` names (else this one)."""
    if isinstance(image, Image):
        return default_image(image.python_version)
    return default_image()
