"""The container image of a task's Ray pods: the environment's own, else the official Ray image."""

from __future__ import annotations

from flyray.config.image import AUTO, Image
from flyray.config.ray_images import default_image

__all__ = ["container_image", "default_image_for"]


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
