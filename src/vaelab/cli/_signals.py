"""Signals and exit statuses, in one place: the CLI owns its process, the library installs no handlers.

Ctrl-C (SIGINT) and SIGTERM end every command the same way, wherever they land (loading, the
epoch loop, the final write, the mixture fit): one line saying what is on disk, and for ``fit``
the command that resumes, then exit 130 (128 + SIGINT) or 143 (128 + SIGTERM). SIGTERM is turned
into :class:`Terminated`, a KeyboardInterrupt, so the trainer's own Ctrl-C path (which keeps the
last checkpoint) serves both. Warnings become one line each, without the source line Python
quotes by default.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import sys
import warnings
from pathlib import Path

from ..checkpoint import CHECKPOINT_FILE
from .flags import flag_words


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process was when it came."""


_received: list[int] = []


def _on_term(signum, frame) -> None:
    _received.append(signum)
    raise Terminated()


@contextlib.contextmanager
def handled(command: str):
    """SIGTERM raises :class:`Terminated` and warnings print as one line, for the block only."""
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _on_term)

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(flag_words(str(message)).split())
        kind = "" if category is UserWarning else f" ({category.__name__})"
        print(f"vaelab {command}: warning{kind}: {text}", file=sys.stderr, flush=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once, whatever filters the caller had
            warnings.showwarning = one_line
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status() -> int:
    """130 after Ctrl-C, 143 after SIGTERM (the shells' 128 + signal number)."""
    return 128 + (signal.SIGTERM if _received else signal.SIGINT)


def saved_epoch(out: Path) -> int | None:
    """The epoch of the checkpoint in ``out`` as it is on disk (its metadata only), or None without one."""
    from safetensors import safe_open

    try:
        with safe_open(out / CHECKPOINT_FILE, framework="pt") as f:
            epoch = json.loads((f.metadata() or {})["vaelab"])["epoch"]
    except Exception:  # no checkpoint, or one the next --resume will refuse by name
        return None
    return epoch if isinstance(epoch, int) else None


def resume_command(argv: list[str]) -> str:
    """``argv`` as a shell command with --resume instead of --overwrite."""
    words = [w for w in argv if w != "--overwrite"]
    if "--resume" not in words:
        words.append("--resume")
    return shlex.join(["vaelab", *words])


def interrupted_message(args, argv: list[str]) -> str:
    """The one line that says what an interrupted command left on disk."""
    name = "SIGTERM" if _received else "Ctrl-C"
    if args.command == "fit":
        out = Path(args.out)
        if getattr(args, "model", None) != "pca" and (epoch := saved_epoch(out)) is not None:
            return (
                f"interrupted by {name}: the checkpoint of epoch {epoch} is in {out}; "
                f"resume with: {resume_command(argv)}"
            )
        return (
            f"interrupted by {name}: no epoch had finished, so nothing was saved in {out}; "
            "rerun the same command to start again"
        )
    target = getattr(args, "out", None) or getattr(args, "json", None)
    return f"interrupted by {name}: nothing was written" + (f" ({target} is unchanged)" if target else "")


def run_command(args, argv: list[str]) -> int:
    """Run ``args.func(args)`` and turn how it ended into an exit status and at most one line on stderr.

    0 (or the command's own status); 2 for an error vaelab raises on purpose or a path that
    cannot be read or written; 130 or 143 when interrupted.
    """
    from ..errors import TrainingInterrupted, VaelabError

    try:
        with handled(args.command):
            status = args.func(args)  # None, or an exit status (explore)
    except (KeyboardInterrupt, TrainingInterrupted):  # Ctrl-C or SIGTERM, in the epoch loop or anywhere else
        # the message is made from what is on disk now, not from what the trainer last knew
        print(f"vaelab {args.command}: {interrupted_message(args, argv)}", file=sys.stderr)
        return exit_status()
    except VaelabError as exc:
        print(f"vaelab {args.command}: error: {flag_words(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: the user's to fix, not a crash
        print(f"vaelab {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2
    if _received:  # a command that handles interruption itself (explore) still reports the signal
        return exit_status()
    return status or 0
