"""How natural an image is under the shipped DDPM: a Monte-Carlo variational bound on -log p(x0).

For an epsilon-prediction DDPM with the "fixed_small" reverse variance, the KL term of step t
(t = 1 .. T-1 in the scheduler's 0-based indexing) is

    L_t = beta_t / (2 * alpha_t * (1 - alphabar_{t-1})) * || eps - eps_theta(x_t, t) ||^2,
    x_t = sqrt(alphabar_t) x0 + sqrt(1 - alphabar_t) eps,

and the prior term is KL(q(x_T | x0) || N(0, I)). `negative_elbo` estimates the sum of the T-1 KL
terms with `num_times` stratified times per image and adds the prior term; the decoder term of
t = 0 (which needs a discretised likelihood) is left out, so the numbers compare images with one
another, not with published bits/dim.
"""

from __future__ import annotations

import math
from typing import Any

import torch


@torch.no_grad()
def negative_elbo(
    pipe: Any, x0: torch.Tensor, *, num_times: int = 16, seed: int = 0, max_batch: int = 256
) -> torch.Tensor:
    """Bound on -log p(x0) in bits per dimension, float64 [n] (lower = more natural).

    pipe: the diffusers DDPMPipeline (`load_pipeline()`, or `load_pretrained().pipeline`); x0: float
    [n, 1, 32, 32] in the model's space [-1, 1] (`Result.states` of a sample from `load_pretrained()`).
    """
    if x0.dim() != 4:
        raise ValueError(f"x0 must be [n, C, H, W]; got shape {tuple(x0.shape)}")
    scheduler, unet = pipe.scheduler, pipe.unet
    if scheduler.config.prediction_type != "epsilon":
        raise ValueError(f"negative_elbo needs an epsilon-prediction DDPM; got {scheduler.config.prediction_type!r}")
    betas = scheduler.betas.double()
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, 0)
    steps = betas.shape[0]
    weight = torch.zeros(steps, dtype=torch.float64)
    weight[1:] = betas[1:] / (2.0 * alphas[1:] * (1.0 - abar[:-1]))
    gen = torch.Generator().manual_seed(seed)
    n, dims = x0.shape[0], x0[0].numel()
    x0 = x0.double()
    kl_sum = torch.zeros(n, dtype=torch.float64)
    strata = (steps - 1) / num_times
    for j in range(num_times):
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        t = (1 + ((j + u) * strata).floor().long()).clamp(1, steps - 1)  # one t per image in stratum j
        eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        a = abar[t].view(n, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        pred = torch.cat(
            [unet(xt[s : s + max_batch].float(), t[s : s + max_batch]).sample.double() for s in range(0, n, max_batch)]
        )
        kl_sum += weight[t] * ((eps - pred) ** 2).flatten(1).sum(1)
    kl_terms = kl_sum / num_times * (steps - 1)
    a_last = abar[-1]
    prior = 0.5 * (a_last * x0.pow(2) + (1 - a_last) - 1 - torch.log(1 - a_last)).flatten(1).sum(1)
    return (kl_terms + prior) / (dims * math.log(2.0))
