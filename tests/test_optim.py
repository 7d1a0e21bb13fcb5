"""vaelab.optim.Adam: torch.optim.Adam's update exactly, its state dict layout, and no torch._dynamo import."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from vaelab.optim import Adam


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
        self.unused = nn.Linear(2, 2)  # never in the forward pass: no gradient, so no state

    def forward(self, x):
        return self.body(x)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return _Net()


def _train(net: nn.Module, opt, steps: int, start: int = 0) -> None:
    for i in range(start, start + steps):
        gen = torch.Generator().manual_seed(i)
        x, y = torch.randn(8, 6, generator=gen), torch.randn(8, 3, generator=gen)
        loss = ((net(x) - y) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_fused_update_is_bit_identical_to_torch_fused_adam():
    ours, theirs = _net(), _net()
    opt = Adam(ours.parameters(), lr=1e-2)
    assert opt.fused
    _train(ours, opt, 25)
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True), 25)
    assert _same(ours, theirs)
    assert not torch.equal(ours.body[0].weight, _net().body[0].weight)  # it moved
    assert sorted(opt.state) == [0, 1, 2, 3]  # the unused layer (indices 4, 5) has no state
    assert float(opt.state[0]["step"]) == 25.0


def test_per_tensor_update_matches_torch_adam():
    ours, theirs = _net(), _net()
    opt = Adam(ours.parameters(), lr=1e-2)
    opt.fused = False  # the path of devices without the fused kernel
    _train(ours, opt, 25)
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=1e-2, foreach=False), 25)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("direction", ["torch->vaelab", "vaelab->torch"])
def test_state_dict_crosses_to_and_from_torch_adam(direction):
    first, reference = _net(), _net()
    a = Adam(first.parameters(), lr=1e-2)
    b = torch.optim.Adam(first.parameters(), lr=1e-2, fused=True)
    source = b if direction == "torch->vaelab" else a
    _train(first, source, 10)
    resumed = _net()
    resumed.load_state_dict(first.state_dict())
    target = (
        Adam(resumed.parameters(), lr=1.0)
        if direction == "torch->vaelab"
        else torch.optim.Adam(resumed.parameters(), lr=1.0, fused=True)
    )
    target.load_state_dict(source.state_dict())  # lr comes from the state dict
    _train(resumed, target, 10, start=10)
    full = torch.optim.Adam(reference.parameters(), lr=1e-2, fused=True)
    _train(reference, full, 20)
    assert _same(resumed, reference)


def test_load_state_dict_refuses_what_does_not_fit():
    opt = Adam(_net().parameters(), lr=1e-2)
    good = Adam(_net().parameters(), lr=1e-2)
    good_state = good.state_dict()
    with pytest.raises(ValueError, match="parameters in one group"):
        opt.load_state_dict({"state": {}, "param_groups": [{**good_state["param_groups"][0], "params": [0]}]})
    with pytest.raises(ValueError, match="weight decay"):
        opt.load_state_dict({"state": {}, "param_groups": [{**good_state["param_groups"][0], "weight_decay": 0.1}]})
    bad = {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2)}}
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict({"state": bad, "param_groups": good_state["param_groups"]})
    assert opt.state == {} and opt.lr == 1e-2  # nothing taken from a refused state dict


def test_fitting_saving_and_loading_do_not_import_torch_dynamo(tmp_path):
    # constructing any torch.optim.Optimizer imports torch._dynamo (1.1-1.6 s of a fresh process), and
    # so do some ops on meta tensors (loading builds the module there first to check its shapes)
    code = (
        "import sys, numpy as np, vaelab\n"
        "X = np.random.default_rng(0).random((64, 5)).astype('float32')\n"
        "vae = vaelab.VAE(latent_dim=2, hidden=(8,), epochs=1, validation_fraction=0, patience=None).fit(X)\n"
        "pca = vaelab.PCA(latent_dim=2).fit(X)\n"
        "for name, model in (('vae', vae), ('pca', pca)):\n"
        f"    model.save({str(tmp_path)!r} + '/' + name)\n"
        f"    vaelab.load({str(tmp_path)!r} + '/' + name).score(X)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
