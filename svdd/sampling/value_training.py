"""Training an MC value estimate (SVDD-MC) from rollouts of the pretrained model.

`collect_rollouts` runs the pretrained sampler and keeps the intermediate states together with
the reward of the clean sample each one led to; `fit_value` regresses a network `net(x, t) ->
values [n]` on those rewards with a mean-squared error (as the paper's code does; invalid,
NaN-reward rollouts are left out). Wrap the result as `svdd.LearnedValue(net)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..processes.nets import ConvValue
from ..processes.weights import load_checkpoint, save_checkpoint, save_net
from ..rng import GeneratorLike, check_generator
from .calls import Calls
from .values import PosteriorMean


@dataclass
class Rollouts:
    """Intermediate states of pretrained rollouts and their final rewards.

    states: one tensor [n, ...] per kept timestep (the state *at* that time);
    times: the kept timesteps, aligned with `states`; rewards: float64 [n], r(x_0) of each rollout.
    """

    states: list[torch.Tensor]
    times: list[Any]
    rewards: torch.Tensor

    def __len__(self) -> int:
        return self.rewards.shape[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tensors, lists, numbers) for `svdd.processes.nets.save_checkpoint`."""
        times = [t.item() if isinstance(t, np.generic) else t for t in self.times]
        return {"states": list(self.states), "times": times, "rewards": self.rewards}

    @classmethod
    def from_dict(cls, blob: Any, where: str | Path = "rollouts") -> Rollouts:
        """The inverse of `to_dict`; ValueError naming `where` for anything else."""
        ok = (
            isinstance(blob, dict)
            and isinstance(blob.get("states"), list)
            and isinstance(blob.get("times"), list)
            and isinstance(blob.get("rewards"), torch.Tensor)
            and blob["rewards"].dim() == 1
            and len(blob["states"]) == len(blob["times"])
            and all(isinstance(s, torch.Tensor) and s.shape[:1] == blob["rewards"].shape for s in blob["states"])
        )
        if not ok:
            raise ValueError(f"{where}: not rollouts (states, times and rewards of the same number of rollouts)")
        return cls(list(blob["states"]), list(blob["times"]), blob["rewards"])


def collect_rollouts(
    process: Any,
    reward: Callable,
    num_rollouts: int,
    *,
    generator: GeneratorLike = None,
    every: int = 1,
    max_batch: int | None = None,
    progress: bool = True,
) -> Rollouts:
    """Run `num_rollouts` pretrained samples, keeping the state at every `every`-th timestep."""
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive int; got {every!r}")
    check_generator(generator, num_rollouts)
    calls = Calls(process, reward, PosteriorMean(reward), max_batch, progress=progress)
    ts = list(process.timesteps)
    with torch.no_grad():
        x = calls.prior(num_rollouts, generator)
        states, times = [], []
        for k in calls.progress_bar(range(len(ts)), "rollouts"):
            if k % every == 0:
                states.append(x.cpu())
                times.append(ts[k])
            out = calls.model(x, ts[k])
            x = calls.transition(x, ts[k], out, generator)
        rewards, _ = calls.score_clean(x)
    return Rollouts(states, times, rewards)


def fit_value(
    net: torch.nn.Module,
    rollouts: Rollouts,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
    time_encoding: Callable[[Sequence[Any]], torch.Tensor] | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> list[float]:
    """Regress `net(x, t)` on the rollouts' rewards (MSE over all kept (state, time) pairs).

    `t` is given to the net as a tensor [batch] of the timestep values (or
    `time_encoding(times)` if given). Returns the mean training loss of each epoch.
    With `checkpoint`, the net, the optimizer, the generator and the losses are saved there
    (atomically) after every epoch, and a run that finds the file resumes after its last epoch.
    """
    ok = torch.isfinite(rollouts.rewards)
    if not ok.any():
        raise ValueError("every rollout has an invalid (NaN/inf) reward; nothing to fit")
    times = _encode_times(rollouts.times, time_encoding)
    x_all = torch.cat([s[ok] for s in rollouts.states])  # [T·n, ...]
    t_all = times.repeat_interleave(int(ok.sum()))  # [T·n]
    y_all = rollouts.rewards[ok].to(torch.float32).repeat(len(rollouts.states))  # [T·n]
    device = next(net.parameters()).device
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, "value-training checkpoint")  # weights_only: plain values only
        try:
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["optimizer"])
            losses = [float(v) for v in state["losses"]]
            if generator is not None and state.get("generator") is not None:
                generator.set_state(state["generator"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"{checkpoint}: not a checkpoint of this value network "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                "delete it to train from the start"
            ) from None
    net.train()
    bar = tqdm(
        range(len(losses), epochs),
        desc="fit value",
        disable=not progress,
        leave=False,
        initial=len(losses),
        total=epochs,
    )
    for _ in bar:
        order = torch.randperm(x_all.shape[0], generator=generator)
        total, count = 0.0, 0
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size]
            pred = net(x_all[idx].to(device), t_all[idx].to(device))
            loss = torch.nn.functional.mse_loss(pred.float().reshape(-1), y_all[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
            count += idx.numel()
        losses.append(total / count)
        bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
        if checkpoint is not None:
            save_checkpoint(
                Path(checkpoint),
                {
                    "net": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "losses": losses,
                    "generator": generator.get_state() if generator is not None else None,
                },
            )
    net.eval()
    return losses


def _encode_times(times: Sequence[Any], time_encoding: Callable | None) -> torch.Tensor:
    """The times given to the net: `time_encoding(times)`, else the timestep values as float32 [T]."""
    if time_encoding is not None:
        return time_encoding(times)
    return torch.tensor([float(t) for t in times], dtype=torch.float32)


def value_correlation(net: Callable, rollouts: Rollouts, time_encoding: Callable | None = None) -> np.ndarray:
    """Pearson correlation between net(x_t, t) and r(x_0), per kept timestep (NaN rewards dropped)."""
    ok = torch.isfinite(rollouts.rewards)
    times = _encode_times(rollouts.times, time_encoding)
    y = rollouts.rewards[ok].numpy()
    corr = []
    with torch.no_grad():
        for k, states in enumerate(rollouts.states):
            x = states[ok]
            pred = net(x, times[k].expand(x.shape[0])).detach().cpu().double().numpy().reshape(-1)
            corr.append(np.corrcoef(pred, y)[0, 1] if pred.std() > 0 and y.std() > 0 else np.nan)
    return np.asarray(corr)


def train_conv_value(
    process: Any, reward: Callable, *, rollouts: int, held_out: int, epochs: int, seed: int, max_batch: int
) -> tuple[torch.nn.Module, list[float], dict[str, Any]]:
    """The shipped masked domains' value recipe: a `ConvValue` (64 channels, 4 blocks) fit by MSE
    (256-row batches, lr 1e-3) on `rollouts` rollouts of `process` (generator seeded `seed`), and
    its per-time Pearson correlation with the reward on `held_out` other rollouts (seed + 1).

    Returns (net, train losses per epoch, record): the final train MSE, the reward's mean and
    variance, the held-out correlation (mean and per time) and the rollouts' seconds.
    """
    start = time.time()
    train = collect_rollouts(
        process, reward, rollouts, generator=torch.Generator().manual_seed(seed), max_batch=max_batch
    )
    held = collect_rollouts(
        process, reward, held_out, generator=torch.Generator().manual_seed(seed + 1), max_batch=max_batch
    )
    rollout_s = time.time() - start
    net = ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)
    losses = fit_value(
        net, train, epochs=epochs, batch_size=256, lr=1e-3, generator=torch.Generator().manual_seed(seed)
    )
    corr = value_correlation(net, held)
    record = {
        "final_train_mse": losses[-1],
        "reward_mean": float(train.rewards.mean()),
        "reward_var": float(train.rewards.var()),
        "held_out_corr_mean": float(np.nanmean(corr)),
        "held_out_corr_at_t": {
            f"{float(t):.4f}": (None if np.isnan(c) else float(c)) for t, c in zip(held.times, corr)
        },
        "rollout_time_s": rollout_s,
    }
    return net, losses, record


def save_value_run(net: torch.nn.Module, out: Path, meta: dict[str, Any], losses: list[float]) -> None:
    """Write a value network at `out` (`svdd.processes.nets.save_net`: X.safetensors + X.json,
    with `meta` and the train losses as its metadata)."""
    save_net(net, out, **meta, train_loss=losses)
