"""The training contenders shared by bench_train.py, bench_fit.py and bench_threads.py.

The MLP VAE 784-400-20 with a Bernoulli decoder, as in pytorch/examples vae/main.py: Adam (lr
1e-3), batch 128, data in [0, 1] as float32, loss = sum over pixels of the Bernoulli negative
log-likelihood + the closed-form KL, mean over the batch. Like _common.py, this imports only the
standard library at import time: torch and pythae are imported inside the functions, so that the
pythae worker (its own venv, without vaelab) can use it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

BATCH = 128
LATENT = 20
HIDDEN = 400
LR = 1e-3


def vaelab_vae(vaelab, epochs: int, seed: int = 0, matched: bool = True):
    """The vaelab estimator of this model, unfitted.

    ``matched``: the plain loop's work and values, for X float32 in [0, 1] (Bernoulli likelihood on
    X as it is, no validation split, no early stopping); otherwise vaelab's defaults for the call
    ``VAE(latent_dim=20, hidden=(400,), epochs=E)`` (10 % validation, early stopping, "auto" choices).
    """
    if not matched:
        return vaelab.VAE(latent_dim=LATENT, hidden=(HIDDEN,), epochs=epochs, random_state=seed)
    return vaelab.VAE(
        latent_dim=LATENT,
        hidden=(HIDDEN,),
        likelihood="bernoulli",
        preprocessing="none",
        epochs=epochs,
        batch_size=BATCH,
        lr=LR,
        validation_fraction=0,
        patience=None,
        random_state=seed,
    )


def plain_model(seed: int = 0):
    """``(model, optimiser)`` of the smallest hand-written loop: the VAE as an nn.Module and Adam.

    The first ``torch.optim.Adam`` of a process imports torch._dynamo (about 1.5 s), as vaelab's does.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(seed)

    class PlainVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, 2 * LATENT)  # mean and log-variance
            self.fc3 = nn.Linear(LATENT, HIDDEN)
            self.fc4 = nn.Linear(HIDDEN, 784)

        def forward(self, x):
            mu, logvar = self.fc2(F.relu(self.fc1(x))).chunk(2, dim=-1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            logits = self.fc4(F.relu(self.fc3(z)))
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
            return (rec + kl).mean()

    model = PlainVAE()
    return model, torch.optim.Adam(model.parameters(), lr=LR)


def plain_epochs(model, opt, X_np, epochs: int) -> Iterator[float]:
    """Train ``plain_model``'s pair on ``X_np`` (n, 784) float32 in [0, 1]; yield each epoch's mean loss."""
    import torch

    X = torch.from_numpy(X_np)  # (n, 784), shares memory with the array
    n = len(X)
    for _ in range(epochs):
        total = torch.zeros(())
        for idx in torch.randperm(n).split(BATCH):
            loss = model(X[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        yield float(total) / n
    model.eval()


def pythae_training(X_np, epochs: int, seed: int = 0, callbacks: list | None = None) -> None:
    """Train pythae 0.1.2's VAE with the same encoder/decoder and its own BaseTrainer on ``X_np``.

    ``callbacks``: pythae ``TrainingCallback`` objects (e.g. an epoch clock). pythae's "bce" loss
    takes probabilities, so its decoder ends in a sigmoid.
    """
    import logging

    import torch
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from torch import nn

    logging.getLogger("pythae").setLevel(logging.WARNING)

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, 2 * LATENT)

        def forward(self, x):
            mu, logvar = self.fc2(torch.relu(self.fc1(x.reshape(len(x), -1)))).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.fc3 = nn.Linear(LATENT, HIDDEN)
            self.fc4 = nn.Linear(HIDDEN, 784)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.fc4(torch.relu(self.fc3(z)))))

    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_dim=(784,), latent_dim=LATENT, reconstruction_loss="bce"), Encoder(), Decoder())
    data = BaseDataset(torch.from_numpy(X_np), torch.zeros(len(X_np)))
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=epochs,
            learning_rate=LR,
            per_device_train_batch_size=BATCH,
            optimizer_cls="Adam",
            seed=seed,
            no_cuda=True,
        )
        BaseTrainer(model, data, None, config, callbacks=callbacks or []).train()
