"""Training a masked diffusion denoiser (MDLM objective) and scoring sequences by its ELBO.

With the log-linear schedule (a token is still clean at time t with probability 1 - t) the
continuous-time negative ELBO of a clean sequence x0 Long[L] is

    NELBO(x0) = E_{t ~ U(0, 1)} E_{x_t ~ q(x_t | x0)} [ (1/t) · Σ_{l masked in x_t} -log p_θ(x0_l | x_t) ],

so -NELBO is a lower bound on log p_θ(x0) in nats. `masked_loss` is its Monte-Carlo estimate on
a batch (divided by L: nats per token), `train_masked` minimises it with AdamW (progress bar,
periodic checkpoints, resume), and `elbo` estimates -NELBO per sequence with a stratified grid
of times, for reporting the naturalness of generated sequences as the paper does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .masked import MaskedDiffusion
from .weights import load_checkpoint, save_checkpoint, save_net

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def stratified_times(n: int, generator: torch.Generator | None = None, eps: float = 1e-3) -> torch.Tensor:
    """n times float[n] in [eps, 1]: one uniform draw in each of n equal strata, shuffled
    (the low-discrepancy sampler MDLM uses; lowers the variance of the loss)."""
    u = (torch.arange(n, dtype=torch.float64) + torch.rand(n, generator=generator, dtype=torch.float64)) / n
    u = u[torch.randperm(n, generator=generator)]
    return (eps + (1.0 - eps) * u).to(torch.float32)


def masked_cross_entropy(logits: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, mask_index: int) -> torch.Tensor:
    """Σ over masked positions of -log p(x0_l | x_t): float[B], from logits [B, L, V]."""
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), x0, reduction="none")  # [B, L]
    return (nll * (x_t == mask_index)).sum(dim=-1)


def masked_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    mask_index: int,
    *,
    generator: torch.Generator | None = None,
    eps: float = 1e-3,
) -> torch.Tensor:
    """The MDLM loss on a batch x0 Long[B, L]: mean over the batch of NELBO / L (nats per token).

    Times are stratified over [eps, 1]; each token is masked with probability t; masked
    positions are scored by cross-entropy weighted 1/t (log-linear schedule).
    """
    b, length = x0.shape
    t = stratified_times(b, generator, eps).to(x0.device)
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float32).to(x0.device)
    x_t = torch.where(u < t.unsqueeze(-1), torch.full_like(x0, mask_index), x0)
    ce = masked_cross_entropy(denoiser(x_t, t), x0, x_t, mask_index)
    return (ce / t).mean() / length


@dataclass
class TrainLog:
    """What `train_masked` did: the step reached, mean training loss per `log_every` steps,
    validation NELBO per token at each log point (if validation data was given), wall time."""

    step: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0


def train_masked(
    denoiser: torch.nn.Module,
    data: torch.Tensor,
    *,
    mask_index: int,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    warmup: int = 200,
    grad_clip: float = 1.0,
    val_data: torch.Tensor | None = None,
    log_every: int = 250,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 500,
    seed: int = 0,
    stop_at: int | None = None,
    progress: bool = True,
) -> TrainLog:
    """Train `denoiser` on clean sequences `data` Long[n, L] with the MDLM loss.

    AdamW with linear warm-up then cosine decay to lr/10, gradient clipping. With `checkpoint`,
    the model, optimizer, data-order generator and log are written there every
    `checkpoint_every` steps and at the end; if the file exists, training resumes from it
    (a finished run returns immediately). `stop_at` ends this call early at that step (after
    writing the checkpoint), for runs split over several jobs; the schedule still spans `steps`.
    `val_data` gets a fixed-seed loss at every log point.
    """
    if data.dtype != torch.long or data.dim() != 2:
        raise ValueError(f"data must be Long[n, L] token ids; got {data.dtype} of shape {tuple(data.shape)}")
    if int(data.max()) >= mask_index or int(data.min()) < 0:
        raise ValueError(
            f"data token ids must lie in 0..{mask_index - 1} (the mask id {mask_index} must not appear in clean data)"
        )
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(denoiser.parameters(), lr=lr, weight_decay=weight_decay)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(steps - warmup, 1)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    log = TrainLog()
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        state = load_checkpoint(path, "training checkpoint")  # weights_only: plain values only
        try:
            denoiser.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            log = TrainLog(**state["log"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"{path}: not a checkpoint of this training ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                "use another checkpoint path"
            ) from None

    def save() -> None:
        if path is not None:
            save_checkpoint(
                path,
                {
                    "model": denoiser.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "log": dict(log.__dict__),
                },
            )

    start = time.perf_counter() - log.wall_time_s
    denoiser.train()
    end = steps if stop_at is None else min(stop_at, steps)
    bar = tqdm(range(log.step, end), desc="train masked", disable=not progress, initial=log.step, total=steps)
    running, count = 0.0, 0
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=gen)
        loss = masked_loss(denoiser, data[idx], mask_index, generator=gen)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(denoiser.parameters(), grad_clip)
        opt.step()
        running, count = running + loss.item(), count + 1
        log.step = step + 1
        if log.step % log_every == 0 or log.step == steps:
            log.train_loss.append(running / count)
            running, count = 0.0, 0
            if val_data is not None:
                log.val_loss.append(validation_loss(denoiser, val_data, mask_index))
                denoiser.train()
            bar.set_postfix(
                loss=f"{log.train_loss[-1]:.4f}",
                **({"val": f"{log.val_loss[-1]:.4f}"} if log.val_loss else {}),
                refresh=False,
            )
        log.wall_time_s = time.perf_counter() - start
        if log.step % checkpoint_every == 0:
            save()
    save()
    denoiser.eval()
    return log


def validation_loss(
    denoiser: torch.nn.Module, data: torch.Tensor, mask_index: int, *, batch_size: int = 256, seed: int = 1234
) -> float:
    """Mean MDLM loss (NELBO nats per token) on `data` Long[n, L] with a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    denoiser.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, data.shape[0], batch_size):
            chunk = data[start : start + batch_size]
            total += masked_loss(denoiser, chunk, mask_index, generator=gen).item() * chunk.shape[0]
    return total / data.shape[0]


def elbo(
    process: MaskedDiffusion, x0: torch.Tensor, *, num_times: int = 16, seed: int = 0, max_batch: int = 1024
) -> torch.Tensor:
    """Evidence lower bound on log p(x0) in nats, float64[B], for clean sequences x0 Long[B, L].

    Monte-Carlo over `num_times` stratified times per sequence (one masking draw each), with
    the denoiser of `process` and the log-linear schedule. Higher is more likely under the model.
    Deterministic for a given `seed`.
    """
    if x0.dtype != torch.long or x0.dim() != 2 or x0.shape[1] != process.length:
        raise ValueError(f"x0 must be Long[B, {process.length}]; got {x0.dtype} of shape {tuple(x0.shape)}")
    if (x0 == process.mask_index).any() or (x0 < 0).any() or (x0 > process.mask_index).any():
        raise ValueError(f"x0 must hold clean token ids 0..{process.vocab_size - 1}")
    gen = torch.Generator().manual_seed(seed)
    b = x0.shape[0]
    # time k of every sequence lies in stratum k: [eps + (k + u)/K·(1 - eps)]
    grid = torch.arange(num_times, dtype=torch.float64) + torch.rand(num_times, generator=gen, dtype=torch.float64)
    t = (1e-3 + (1 - 1e-3) * grid / num_times).to(torch.float32)
    rows_x0 = x0.repeat_interleave(num_times, dim=0)  # [B·K, L]
    rows_t = t.repeat(b).to(x0.device)  # [B·K]
    u = torch.rand(rows_x0.shape, generator=gen).to(x0.device)
    rows_xt = torch.where(u < rows_t.unsqueeze(-1), torch.full_like(rows_x0, process.mask_index), rows_x0)
    weighted = []
    with torch.no_grad():
        for start in range(0, rows_x0.shape[0], max_batch):
            sl = slice(start, start + max_batch)
            logits = process.denoiser(rows_xt[sl], rows_t[sl])
            ce = masked_cross_entropy(logits, rows_x0[sl], rows_xt[sl], process.mask_index)
            weighted.append((ce / rows_t[sl]).to(torch.float64).cpu())
    nelbo = torch.cat(weighted).view(b, num_times).mean(dim=-1)
    return -nelbo


def save_training_run(
    net: torch.nn.Module,
    log: TrainLog,
    out: Path,
    *,
    train: torch.Tensor,
    val: torch.Tensor,
    started: float,
    **metadata: Any,
) -> dict[str, Any]:
    """Save a denoiser trained by `train_masked` with its record -> the record.

    Writes `net` with `metadata` plus the data sizes (train/val Long[B, L]), final losses, wall
    times, parameter count and torch version to `out` (`save_net`: X.safetensors + X.json, whose
    metadata also holds the loss curves). Returns the record without the loss curves.
    `started` is the `time.time()` before training.
    """
    meta = {
        **metadata,
        "train_size": int(train.shape[0]),
        "val_size": int(val.shape[0]),
        "final_train_nelbo_per_token": log.train_loss[-1],
        "final_val_nelbo_per_token": log.val_loss[-1],
        "train_wall_time_s": log.wall_time_s,
        "this_run_s": time.time() - started,
        **denoiser_summary(net),
        "torch": str(torch.__version__),
    }
    save_net(net, out, **meta, train_loss=log.train_loss, val_loss=log.val_loss)
    return meta


def denoiser_summary(denoiser: torch.nn.Module) -> dict[str, Any]:
    """Parameter count and float32 size in MB of a module (for reports)."""
    n = sum(p.numel() for p in denoiser.parameters())
    return {"parameters": n, "size_mb": n * 4 / 2**20}
