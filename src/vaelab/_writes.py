"""Writing files and directories so that a kill, a full disk or a second process never leaves a mix.

Every output of vaelab goes through here:

* :func:`write_atomic` -- one file: written beside the target under a temporary name, fsynced,
  then renamed over it. A kill at any instant leaves the old file or the new one.
* :func:`replace_dir` -- a directory (a saved model): built whole beside the target, then swapped
  in by one ``renameat2(RENAME_EXCHANGE)`` where the kernel has it.
* :class:`RunLock` -- an advisory ``flock`` on a directory: a second writer is refused at once, and
  the kernel releases the lock when the holder exits, however it exits (SIGKILL included).

Temporary names carry the writer's pid, ``.NAME.PID.tmp`` and ``.NAME.PID.new``; those of dead
processes are removed at the next write to the same place, and readers never look at them.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from .errors import DiskFullError, VaelabError

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?:tmp|new|old)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(directory: Path, name: str | None = None) -> None:
    """Remove the temporary files and directories that dead writers left in ``directory`` (for ``name``, or all)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or (name is not None and match["name"] != name) or _alive(int(match["pid"])):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)


def temp_name(path: Path, kind: str = "tmp") -> Path:
    """Where this process writes ``path`` before renaming it into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.{kind}")


def free_bytes(path: Path) -> int | None:
    try:
        stat = os.statvfs(path if path.is_dir() else path.parent)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def disk_full(path: Path, needed: int | None, kept: str) -> DiskFullError:
    """The one-line error for a write of ``path`` that ran out of space; ``kept`` says what survived."""
    from .data._arrays import describe_bytes

    free = free_bytes(path)
    need = f"it needs about {describe_bytes(needed)}" if needed else "it needs more space"
    have = f", {describe_bytes(free)} are free" if free is not None else ""
    return DiskFullError(f"no space left on the device to write {path} ({need}{have}); {kept}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, write: Callable[[Path], object], *, needed: int | None = None, kept: str | None = None
) -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it over ``path``.

    The file gets the mode a new file gets under the umask, whatever ``write`` chose, so every
    file vaelab writes has the same mode. Running out of space raises :class:`DiskFullError`
    naming ``path`` and ``needed`` bytes; ``kept`` (default: "the previous file is unchanged")
    ends its message.
    """
    path = Path(path)
    clean_stale(path.parent, path.name)
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the kernel applies the umask
        mode = os.fstat(fd).st_mode & 0o777
        os.close(fd)
        write(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            default = f"the previous {path.name} is unchanged" if path.exists() else "nothing was written"
            raise disk_full(path, needed, kept or default) from None
        raise
    except Exception as exc:  # safetensors reports a full disk as its own error type
        if "No space left" in str(exc):
            raise disk_full(path, needed, kept or f"the previous {path.name} is unchanged") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def staging_dir(target: Path) -> Path:
    """A fresh empty directory beside ``target`` in which to build its replacement."""
    clean_stale(target.parent, target.name)
    staging = temp_name(target, "new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def replace_dir(staging: Path, target: Path) -> None:
    """Put the complete directory ``staging`` at ``target``, replacing what was there as a unit.

    With RENAME_EXCHANGE the swap is one step; elsewhere the old directory is first renamed
    aside (a kill in between leaves no ``target``, but the old one whole beside it).
    """
    _fsync_dir(staging)
    if not target.exists():
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now the old directory
    else:
        aside = temp_name(target, "old")
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(target.parent)


class LockedError(VaelabError):
    """Another live process is writing the same output directory."""


class RunLock:
    """An exclusive, non-blocking ``flock`` on the directory ``path`` (which must exist)."""

    def __init__(self, path: Path, what: str = "directory"):
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"{self.path} is in use by another vaelab process writing this {self.what}; wait for it to "
                "finish or choose another --out"
            ) from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None
