"""Reader for a folder of PNG/JPEG images (Pillow), grey or RGB, 8 bits per channel."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Pillow modes we read, and what they become: "L" (grey) or "RGB". Others (alpha, CMYK,
# 16-bit, float) are refused rather than converted, so no information is dropped silently.
_MODES = {"L": "L", "1": "L", "RGB": "RGB", "P": "RGB"}
_MODE_WORDS = {"L": "grey", "RGB": "RGB"}


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (so the order is stable)."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _describe(key: tuple[str, tuple[int, int]]) -> str:
    mode, (w, h) = key
    return f"{h}x{w} {_MODE_WORDS[mode]}"


def _open(path: Path, where: str) -> Image.Image:
    try:
        return Image.open(path)  # opened read-only; pixels are read lazily
    except (OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: {path.name} is not a readable image ({exc})") from exc


def read_image_folder(
    folder: str | os.PathLike,
    image_size: tuple[int, int] | None = None,
    where: str | None = None,
) -> np.ndarray:
    """Read every PNG/JPEG image directly inside ``folder``.

    Parameters
    ----------
    folder : path-like
        Files with other extensions, and subfolders, are ignored.
    image_size : (height, width), optional
        Resize every image to this size (bilinear); without it all images must share one size.
    where : str, optional
        The name used in error messages (default: the folder path).

    Returns
    -------
    ndarray of shape (n_images, C, H, W), uint8
        C is 1 for grey images and 3 for RGB; all images must have the same one.
    """
    folder = Path(folder)
    where = where or str(folder)
    paths = list_images(folder)
    if not paths:
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f" (it has subfolders {', '.join(subfolders[:5])}: pass one of them)" if subfolders else ""
        raise DataError(
            f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) directly in this folder{hint}"
        )

    keys = []  # (mode, (width, height)) of each file, from its header only
    for path in paths:
        with _open(path, where) as im:
            if im.mode not in _MODES:
                raise DataError(
                    f"{where}: {path.name} has Pillow mode {im.mode!r}; vaelab reads 8-bit grey "
                    "or RGB images: convert it (e.g. image.convert('RGB'))"
                )
            keys.append((_MODES[im.mode], im.size))
    _check_uniform(paths, keys, image_size, where)

    mode = keys[0][0]
    width, height = (image_size[1], image_size[0]) if image_size else keys[0][1]
    channels = 1 if mode == "L" else 3
    X = np.empty((len(paths), channels, height, width), dtype=np.uint8)  # (n, C, H, W)
    for i, path in enumerate(paths):
        with _open(path, where) as im:
            try:
                im = im.convert(mode)
                if im.size != (width, height):
                    im = im.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(im, dtype=np.uint8)
            except (OSError, ValueError) as exc:
                raise DataError(f"{where}: {path.name} is truncated or corrupted ({exc})") from exc
        X[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return X


def _check_uniform(paths, keys, image_size, where) -> None:
    """Raise a DataError naming the files whose mode (or size, unless resizing) is odd."""
    if image_size is not None:  # sizes will be made equal; modes still must agree
        keys = [(mode, (0, 0)) for mode, _ in keys]
    counts = Counter(keys)
    if len(counts) == 1:
        return
    usual = counts.most_common(1)[0][0]
    odd = [(p.name, k) for p, k in zip(paths, keys, strict=True) if k != usual]
    listed = ", ".join(
        f"{name} is {_describe(k) if image_size is None else _MODE_WORDS[k[0]]}" for name, k in odd[:5]
    )
    more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
    fixes = []
    if len({m for m, _ in keys}) > 1:
        fixes.append("convert them all to one mode (grey or RGB)")
    if len({s for _, s in keys}) > 1:
        fixes.append("pass image_size=(H, W) (--image-size H W) to resize them")
    usual_words = _describe(usual) if image_size is None else _MODE_WORDS[usual[0]]
    raise DataError(
        f"{where}: images differ: most are {usual_words}, but {listed}{more}; {' and '.join(fixes)}"
    )
