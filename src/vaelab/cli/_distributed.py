"""The torchrun process group the ``fit`` command joins when started under torchrun."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def process_group():
    """Join torch.distributed when started by torchrun (WORLD_SIZE > 1); yields this process's rank."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield 0
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()
