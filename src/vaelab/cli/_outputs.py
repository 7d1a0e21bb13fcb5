"""One output policy for every command: what may be written where, and how.

* An existing output is replaced only with ``--overwrite``; the check runs before any work.
* Every file is written atomically (:func:`vaelab._writes.write_atomic`): a failure or a kill
  leaves the old file whole.
* Nothing is written into a model directory as a plain output (``sample --out RUN/config.json``
  would destroy the model).
* A directory the command creates and then fails to fill is removed again.
* Multi-file outputs (compare, sweep) are built in a staging directory and moved into place one
  entry at a time, each by a rename.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .._writes import RunLock, clean_stale, replace_dir, staging_dir, write_atomic
from ..checkpoint import CHECKPOINT_FILE
from ..errors import ConfigError
from ..estimators.modelfile import CONFIG_FILE, WEIGHTS_FILE

MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_FILE)


def _is_model_dir(path: Path) -> bool:
    return any((path / name).exists() for name in MODEL_FILES)


def check_writable(directory: Path, flag: str = "--out") -> None:
    """Refuse, before any work, a directory where no file can be created (read-only, no permission)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{flag} {directory}: cannot write there ({exc.strerror or exc}); choose a writable directory"
        ) from None


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def output_file(path: str, overwrite: bool, flag: str = "--out") -> Path:
    """The checked path of a single output file (see the module docstring for the policy)."""
    out = Path(path)
    if not path or out.is_dir() or not out.name:
        raise ConfigError(f"{flag} {path!r} must be a file name, not a directory or empty")
    if _is_model_dir(out.parent):
        raise ConfigError(
            f"{flag} {path}: {out.parent} is a model directory, and vaelab writes nothing else into one; "
            "choose a path outside it"
        )
    if out.exists() and not overwrite:
        raise ConfigError(f"{flag} {path} already exists; pass --overwrite to replace it")
    check_writable(out.parent if out.parent.is_dir() else _existing_parent(out.parent), flag)
    return out


def save_npy(out: Path, array: np.ndarray) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to other names
            np.save(f, array)

    write_atomic(out, write, needed=array.nbytes + 128)


def save_json(out: Path, document: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, allow_nan=False)
    write_atomic(out, lambda tmp: tmp.write_text(text), needed=len(text))


def output_dir(path: str, overwrite: bool, names: tuple[str, ...], flag: str = "--out") -> Path:
    """The checked directory of a multi-file output whose entries are ``names``."""
    out = Path(path)
    if not path or (out.exists() and not out.is_dir()):
        raise ConfigError(
            f"{flag} {path!r} must name a directory, and a file of that name exists"
            if path
            else f"{flag} must not be empty"
        )
    if _is_model_dir(out):
        raise ConfigError(f"{flag} {path} is a model directory; choose another directory for this output")
    there = [name for name in names if (out / name).exists()]
    if there and not overwrite:
        raise ConfigError(f"{flag} {path} already holds {', '.join(there)}; pass --overwrite to replace them")
    check_writable(out if out.is_dir() else _existing_parent(out), flag)
    return out


def publish(staging: Path, out: Path) -> None:
    """Move every entry of ``staging`` into ``out``, each replaced by a rename (directories as units)."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if entry.is_dir():
            if target.exists() and not target.is_dir():
                target.unlink()
            replace_dir(entry, target)
        else:
            os.replace(entry, target)


@contextlib.contextmanager
def staged(out: Path):
    """A staging directory beside ``out`` to build the output in; removed however the block ends."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(out)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _entries(out: Path) -> list[str]:
    """What ``out`` holds, less the temporary files of dead writers (which it removes)."""
    clean_stale(out)
    return sorted(p.name for p in out.iterdir())


@contextlib.contextmanager
def run_directory(out: Path, what: str = "run"):
    """``out`` created if needed and locked against a second writer.

    Removed again if the block fails leaving it empty.
    """
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output directory {str(out)!r}: {exc.strerror or exc}") from None
    try:
        with RunLock(out, what):
            yield out
    except BaseException:
        if created and out.is_dir() and not _entries(out):
            out.rmdir()
        raise


def run_contents(out: Path) -> list[str]:
    """The entries of an existing run directory (stale temporary files removed), or [] when it does not exist."""
    return _entries(out) if out.is_dir() else []
