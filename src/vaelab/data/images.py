"""Reader for a folder of PNG/JPEG images (Pillow), grey or RGB, 8 bits per channel.

`open_image_folder` checks the headers and decodes images when they are indexed (a folder larger
than memory); `read_image_folder` decodes them all at once.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from ._arrays import check_claimed_bytes

# Values per image sample (C * H * W) vaelab's models take as one input vector: 2**24 is a
# 4096x4096 grey or a 2364x2364 RGB image. A larger sample would make a first layer no machine
# can hold, so it is refused from the header before anything is decoded.
MAX_SAMPLE_VALUES = 1 << 24

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Pillow modes we read, and what they become: "L" (grey) or "RGB". Others (alpha, CMYK,
# 16-bit, float) are refused rather than converted, so no information is dropped silently.
_MODES = {"L": "L", "1": "L", "RGB": "RGB", "P": "RGB"}
_MODE_WORDS = {"L": "grey", "RGB": "RGB"}


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (so the order is stable)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _describe(key: tuple[str, tuple[int, int]]) -> str:
    mode, (w, h) = key
    return f"{h}x{w} {_MODE_WORDS[mode]}"


def _open(path: Path, where: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Sizes are checked by _check_dimensions against vaelab's own limits, in one message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)  # opened read-only; pixels are read lazily
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"{where}: {path.name} claims more pixels than Pillow will decode ({exc}); downscale "
            f"the images to at most {MAX_SAMPLE_VALUES:,} values each (e.g. 1024x1024)"
        ) from exc
    except OSError as exc:
        raise DataError(f"{where}: {path.name} is not a readable image ({exc})") from exc


def _check_dimensions(path: Path, mode: str, size: tuple[int, int], image_size, where: str) -> None:
    """Refuse, from the header alone, an image too large to decode or to use as one sample."""
    width, height = size
    channels = 1 if mode == "L" else 3
    check_claimed_bytes(
        width * height * channels,
        where,
        f"decoding {path.name} ({height}x{width} pixels)",
        "downscale the images before loading them",
    )
    h, w = image_size if image_size else (height, width)
    if h * w * channels > MAX_SAMPLE_VALUES:
        fix = "pass a smaller image_size" if image_size else "pass image_size=(H, W) to resize them"
        raise DataError(
            f"{where}: {path.name} is {height}x{width} {_MODE_WORDS[mode]} pixels: one sample of "
            f"{h * w * channels:,} values, over vaelab's limit of {MAX_SAMPLE_VALUES:,} per sample; "
            f"{fix}, e.g. image_size=(256, 256), or downscale the files"
        )


class ImageFolder:
    """The images of a folder as a read-only uint8 array of shape (n_images, C, H, W), decoded on demand.

    Made by `open_image_folder`, which has checked every file's header. ``folder[key]`` decodes
    only the images an int, a slice or a 1-D array of ints picks, so a folder larger than memory
    is trained on batch by batch; ``np.asarray(folder)`` decodes them all. Image ``i`` is the
    file ``paths[i]`` (sorted by name). A file that cannot be decoded raises a DataError naming it.
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: list[Path], mode: str, height: int, width: int, where: str):
        self.paths = tuple(paths)
        self.mode = mode  # "L" (grey) or "RGB": what every image is converted to
        self.where = where  # the name that starts error messages
        self.shape = (len(self.paths), 1 if mode == "L" else 3, height, width)

    @property
    def size(self) -> int:
        """Values in all the images: n_images * C * H * W."""
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ImageFolder({self.where!r}, shape={self.shape})"

    def __getitem__(self, key) -> np.ndarray:
        """Decode image ``key`` (an int) -> (C, H, W), or the images a slice or int array picks -> (k, C, H, W)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self._decode(self.paths[key])
        if isinstance(key, slice):
            picks = list(range(*key.indices(len(self))))
        else:
            positions = np.asarray(key)
            if positions.ndim != 1 or positions.dtype.kind not in "iu":
                raise TypeError(f"an image folder is indexed by an int, a slice or a 1-D array of ints, not {key!r}")
            picks = positions.tolist()
        out = np.empty((len(picks), *self.shape[1:]), dtype=np.uint8)  # (k, C, H, W)
        for i, j in enumerate(picks):
            out[i] = self._decode(self.paths[j])
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        # Decoding always makes a new array, whatever ``copy`` asks for.
        images = self[:]
        return images if dtype is None else images.astype(dtype, copy=False)

    def _decode(self, path: Path) -> np.ndarray:
        """One image as uint8 of shape (C, H, W), converted to ``mode`` and resized to (H, W) if needed."""
        height, width = self.shape[2:]
        with _open(path, self.where) as im:
            try:
                im = im.convert(self.mode)
                if im.size != (width, height):
                    im = im.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(im, dtype=np.uint8)
            except (OSError, ValueError) as exc:
                raise DataError(f"{self.where}: {path.name} is truncated or corrupted ({exc})") from exc
        return pixels[None] if self.mode == "L" else pixels.transpose(2, 0, 1)


def open_image_folder(
    folder: str | os.PathLike,
    image_size: tuple[int, int] | None = None,
    where: str | None = None,
) -> ImageFolder:
    """The PNG/JPEG images directly inside ``folder``, checked from their headers, decoded on demand.

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
    ImageFolder
        Of shape (n_images, C, H, W): C is 1 for grey images and 3 for RGB; all images must have
        the same one.
    """
    folder = Path(folder)
    where = where or str(folder)
    paths = list_images(folder)
    if not paths:
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f" (it has subfolders {', '.join(subfolders[:5])}: pass one of them)" if subfolders else ""
        raise DataError(f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) directly in this folder{hint}")

    keys = []  # (mode, (width, height)) of each file, from its header only
    for path in paths:
        with _open(path, where) as im:
            if im.mode not in _MODES:
                raise DataError(
                    f"{where}: {path.name} has Pillow mode {im.mode!r}; vaelab reads 8-bit grey "
                    "or RGB images: convert it (e.g. image.convert('RGB'))"
                )
            _check_dimensions(path, _MODES[im.mode], im.size, image_size, where)
            keys.append((_MODES[im.mode], im.size))
    _check_uniform(paths, keys, image_size, where)
    height, width = image_size if image_size else keys[0][1][::-1]
    return ImageFolder(paths, keys[0][0], height, width, where)


def read_image_folder(
    folder: str | os.PathLike,
    image_size: tuple[int, int] | None = None,
    where: str | None = None,
) -> np.ndarray:
    """Read every PNG/JPEG image directly inside ``folder`` into memory.

    The parameters are those of `open_image_folder`. Returns an ndarray of shape
    (n_images, C, H, W), uint8.
    """
    return np.asarray(open_image_folder(folder, image_size, where))


def _check_uniform(paths, keys, image_size, where) -> None:
    """Raise a DataError naming the files whose mode (or size, unless resizing) is odd."""
    if image_size is not None:  # sizes will be made equal; modes still must agree
        keys = [(mode, (0, 0)) for mode, _ in keys]
    counts = Counter(keys)
    if len(counts) == 1:
        return
    usual = counts.most_common(1)[0][0]
    odd = [(p.name, k) for p, k in zip(paths, keys, strict=True) if k != usual]
    listed = ", ".join(f"{name} is {_describe(k) if image_size is None else _MODE_WORDS[k[0]]}" for name, k in odd[:5])
    more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
    fixes = []
    if len({m for m, _ in keys}) > 1:
        fixes.append("convert them all to one mode (grey or RGB)")
    if len({s for _, s in keys}) > 1:
        fixes.append("pass image_size=(H, W) to resize them")
    usual_words = _describe(usual) if image_size is None else _MODE_WORDS[usual[0]]
    raise DataError(f"{where}: images differ: most are {usual_words}, but {listed}{more}; {' and '.join(fixes)}")
