"""Adam for the trainer, without ``torch.optim``'s machinery.

The update is ``torch.optim.Adam``'s (no weight decay, no AMSGrad): on CPU and CUDA through the same
fused kernel as ``torch.optim.Adam(fused=True)``, so the weights are bit-identical to it
(tests/test_optim.py); elsewhere through the per-tensor formula. Why not ``torch.optim.Adam`` itself:
constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo``, 1.1-1.6 s of a fresh process on
a 2-core machine, a third of a 2-epoch Fashion-MNIST fit (benchmarks/README.md, bench_fit.py).

The state dict has ``torch.optim.Adam``'s layout (``state`` keyed by parameter index with ``step``,
``exp_avg``, ``exp_avg_sq``; one entry in ``param_groups``), so checkpoints written with either load
into the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch

FUSED_DEVICES = ("cpu", "cuda")  # where torch._fused_adam_ has kernels


class Adam:
    """Adam (Kingma & Ba, 2015) over ``params``: ``step()`` after each backward pass, ``zero_grad()`` before.

    Parameters without a gradient at a step are left alone and get no state, as in ``torch.optim``.
    """

    def __init__(
        self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.state: dict[int, dict[str, torch.Tensor]] = {}
        self.fused = hasattr(torch, "_fused_adam_") and all(
            p.device.type in FUSED_DEVICES and p.is_floating_point() for p in self.params
        )
        # the fused kernel takes one device and dtype per call: parameter indices grouped once
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(self.params):
            groups.setdefault((p.device, p.dtype), []).append(i)
        self._fused_groups = list(groups.values())

    @property
    def param_groups(self) -> list[dict]:
        return [{"params": self.params, "lr": self.lr, "betas": self.betas, "eps": self.eps}]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _step_device(self, p: torch.Tensor) -> torch.device:
        # torch.optim.Adam keeps the fused kernel's step as a float32 scalar on the parameter's device
        return p.device if self.fused else torch.device("cpu")

    def _entry(self, index: int) -> dict[str, torch.Tensor]:
        entry = self.state.get(index)
        if entry is None:
            p = self.params[index]
            zeros = torch.zeros_like(p, memory_format=torch.preserve_format)
            step = torch.zeros((), dtype=torch.float32, device=self._step_device(p))
            entry = self.state[index] = {"step": step, "exp_avg": zeros, "exp_avg_sq": zeros.clone()}
        return entry

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        beta1, beta2 = self.betas
        if self.fused:
            for group in self._fused_groups:
                live = [i for i in group if self.params[i].grad is not None]
                if not live:
                    continue
                entries = [self._entry(i) for i in live]
                steps = [entry["step"] for entry in entries]
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(
                    [self.params[i] for i in live],
                    [cast(torch.Tensor, self.params[i].grad) for i in live],
                    [entry["exp_avg"] for entry in entries],
                    [entry["exp_avg_sq"] for entry in entries],
                    [],
                    steps,
                    amsgrad=False,
                    lr=self.lr,
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=0.0,
                    eps=self.eps,
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )
            return
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            entry = self._entry(i)
            entry["step"] += 1
            t = float(entry["step"])
            entry["exp_avg"].lerp_(grad, 1 - beta1)
            entry["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (entry["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**t)).add_(self.eps)
            p.addcdiv_(entry["exp_avg"], denom, value=-self.lr / (1 - beta1**t))

    def state_dict(self) -> dict:
        """``torch.optim.Adam``'s layout: ``{"state": {index: tensors}, "param_groups": [hyper-parameters]}``."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": 0.0, "amsgrad": False}
        group |= {"maximize": False, "fused": self.fused, "params": list(range(len(self.params)))}
        return {"state": {i: dict(entry) for i, entry in sorted(self.state.items())}, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take ``state_dict``'s moments, steps and hyper-parameters; ValueError if they do not fit.

        The tensors are copied to each parameter's device and dtype (a step to this instance's step device).
        """
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"{len(self.params)} parameters in one group expected")
        if groups[0].get("weight_decay", 0) or groups[0].get("amsgrad", False) or groups[0].get("maximize", False):
            raise ValueError("weight decay, AMSGrad and maximize are not supported")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for index, entry in state_dict["state"].items():
            p = self.params[int(index)]
            if set(entry) != {"step", "exp_avg", "exp_avg_sq"}:
                raise ValueError(f"state {index} has entries {sorted(entry)}")
            moments = {k: entry[k].to(p.device, p.dtype, copy=True) for k in ("exp_avg", "exp_avg_sq")}
            if any(m.shape != p.shape for m in moments.values()):
                raise ValueError(f"state {index} does not have its parameter's shape {tuple(p.shape)}")
            step = entry["step"].to(self._step_device(p), torch.float32, copy=True).reshape(())
            state[int(index)] = {"step": step} | moments
        betas = groups[0].get("betas", self.betas)
        self.lr = float(groups[0]["lr"])
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(groups[0]["eps"])
        self.state = state
