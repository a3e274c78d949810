"""A learned score: a small MLP s_theta(x, t) trained by denoising score matching (Vincent 2011; Song et al. 2021).

Loss (OU convention of the paper): x_t = e^-t x_0 + sqrt(Delta_t) z, target grad log p(x_t | x_0) = -z / sqrt(Delta_t),
weight lambda(t) = Delta_t, i.e. E || sqrt(Delta_t) s_theta(x_t, t) + z ||^2 with t ~ U[t_min, T]. `LearnedScore`
exposes the interface the samplers use (dim, variances, log_prob_score), so `langevin_reference` runs the network
in torch unchanged and accumulates the same heat; ln p is then unknown (NaN) and the pipeline evaluates the true
endpoint densities instead.
"""
from __future__ import annotations

import numpy as np

from toolbox.diffusion.densities import GaussianMixture


class LearnedScore:
    def __init__(self, net, dim: int):
        self.net = net
        self.dim = dim
        self.variances = np.ones(1)  # never a point mass: t = 0 is allowed

    def log_prob_score(self, x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float32)
            tt = torch.full((len(x), 1), float(t))
            score = self.net(torch.cat([xt, tt], 1)).double().numpy()
        return np.full(len(x), np.nan), score

    def log_prob(self, x, t):
        return np.full(len(x), np.nan)


def train_score_mlp(density: GaussianMixture, steps: int = 3000, batch: int = 512, hidden: int = 128,
                    t_min: float = 1e-3, t_max: float = 5.0, lr: float = 2e-3, seed: int = 0) -> tuple[LearnedScore, list]:
    """Train on fresh samples of the data density (Philox-keyed); returns the score and the loss curve."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 128-wide MLP gains nothing from intra-op threads, and they spin on a busy machine
    try:
        return _train(density, steps, batch, hidden, t_min, t_max, lr, seed)
    finally:
        torch.set_num_threads(threads)


def _train(density, steps, batch, hidden, t_min, t_max, lr, seed):
    import torch

    torch.manual_seed(seed)
    d = density.dim
    net = torch.nn.Sequential(torch.nn.Linear(d + 1, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.SiLU(), torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
                              torch.nn.Linear(hidden, d))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        x0 = torch.as_tensor(density.sample(batch, 0.0, seed, stream=500, first=step * batch), dtype=torch.float32)
        t = t_min + (t_max - t_min) * torch.rand(batch, 1, generator=gen)
        z = torch.randn(batch, d, generator=gen)
        delta = 1 - torch.exp(-2 * t)
        xt = torch.exp(-t) * x0 + delta.sqrt() * z
        loss = ((delta.sqrt() * net(torch.cat([xt, t], 1)) + z) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return LearnedScore(net.eval(), d), losses


def score_error(learned: LearnedScore, density: GaussianMixture, times, samples: int = 4000, seed: int = 0):
    """E_{p_t} |s_theta - grad log p_t|^2 at each time (the score error that enters the KL bound)."""
    out = []
    for t in times:
        x = density.sample(samples, t, seed, stream=501)
        diff = learned.log_prob_score(x, t)[1] - density.score(x, t)
        out.append(float(np.mean(np.sum(diff**2, 1))))
    return np.array(out)
