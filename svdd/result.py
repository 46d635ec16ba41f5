"""The `Result` of a sampling run: decoded samples, their rewards, a per-step trace, counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class Result:
    """What `svdd.sample` returns.

    samples: the N decoded objects (`process.decode` of the final states); N·M of them, group by
        group, for fk with `return_all=True` (so are `rewards` and `states`).
    rewards: float64 [N], the reward of each final sample (NaN for invalid objects).
    states: the final raw states x_0, shape [N, ...].
    trace: one dict per denoising step with statistics of the values the sampler kept there
        (`svdd.sampling.calls.trace_entry`: `t`, `value_mean`, `value_median`, `value_max`, `invalid`, and
        `selected` for svdd, `resampled` for svdd_r, `ess`/`resampled` for smc (+ `resampled_groups`
        with groups), `scored`/`ess`/`resampled` (groups) for fk with `final_ess` on the last step,
        `distinct` for beam, `pass` (and `improved` on a pass's last step) for refine, whose trace
        holds the steps of every pass; pretrained and best_of_n record `t` only).
        `SVDDScheduler.trace` has svdd's keys.
    stats: compute counters: `model_calls` (item-level denoiser evaluations), `model_batches`,
        `reward_calls` (objects passed to the reward), `value_calls` (intermediate states
        scored), `fallback_rows` (selections where no candidate had a valid value),
        and seconds spent inside each kind of call: `model_time_s`, `prior_time_s`,
        `transition_time_s`, `denoise_time_s` (PM's x0 prediction), `decode_time_s`,
        `reward_time_s`, `value_time_s` (learned values), with `wall_time_s` for the whole call;
        wall time minus their sum is the sampler's own overhead. `SVDDScheduler.stats` uses the
        same names (`svdd.sampling.calls.new_stats`).
    config: the method and its settings, for the record.
    """

    samples: list[Any]
    rewards: np.ndarray
    states: torch.Tensor
    trace: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def summary(self) -> dict[str, float]:
        """Median, mean, 90th percentile and fraction valid of the rewards.

        Valid means not NaN: +inf and -inf rewards are valid (the policy of `svdd.rewards`) and
        enter the statistics (`reward_quantile`); the mean is NaN when both occur.
        """
        r = np.asarray(self.rewards, dtype=np.float64)
        ok = r[~np.isnan(r)]
        if ok.size == 0:
            return {"median": float("nan"), "mean": float("nan"), "p90": float("nan"), "valid": 0.0}
        with np.errstate(invalid="ignore"):
            mean = float(ok.mean())
        return {
            "median": reward_quantile(ok, 0.5),
            "mean": mean,
            "p90": reward_quantile(ok, 0.9),
            "valid": ok.size / r.size,
        }

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per sample: `sample` (the decoded object) and `reward`."""
        import pandas as pd

        return pd.DataFrame({"sample": list(self.samples), "reward": np.asarray(self.rewards, dtype=np.float64)})

    def _repr_html_(self) -> str:
        """A readable summary in Jupyter: the settings, the reward summary, the counters and
        the best samples (strings shown as they are; other objects by their type)."""
        import html

        s = self.summary()
        stats = {
            k: v
            for k, v in self.stats.items()
            if k in ("model_calls", "reward_calls", "value_calls", "wall_time_s", "fallback_rows")
        }
        head = ", ".join(
            f"{k}={v!r}"
            for k, v in self.config.items()
            if k in ("method", "num_samples", "num_candidates", "alpha", "reward", "value")
        )
        rows = "".join(
            f"<tr><td>{k}</td><td>{v:.4g}</td></tr>" if isinstance(v, float) else f"<tr><td>{k}</td><td>{v}</td></tr>"
            for k, v in {**s, **stats}.items()
        )
        order = np.argsort(-np.nan_to_num(self.rewards, nan=-np.inf), kind="stable")[:5]
        shown = [s if isinstance(s, str) else type(s).__name__ for s in self.samples]
        best = "".join(
            f"<tr><td>{i}</td><td>{self.rewards[i]:.4g}</td><td><code>{html.escape(shown[i])[:120]}</code></td></tr>"
            for i in order
        )
        return (
            f"<div><b>svdd.Result</b> {html.escape(head)}<table>{rows}</table>"
            f"<table><tr><th>#</th><th>reward</th><th>sample (best 5)</th></tr>{best}</table></div>"
        )

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"Result(method={self.config.get('method')!r}, n={len(self)}, "
            f"median_reward={s['median']:.4g}, model_calls={self.stats.get('model_calls')}, "
            f"reward_calls={self.stats.get('reward_calls')})"
        )


def reward_quantile(rewards: np.ndarray, q: float) -> float:
    """The q-quantile of the valid (not NaN) rewards [n], NaN when there are none.

    `np.quantile`'s linear interpolation for finite rewards; with infinities, which it would turn
    into NaN (inf - inf), the interpolation is taken to its limit: between a finite value and +inf
    it is +inf, between -inf and a finite value -inf, and between -inf and +inf the nearer one.
    """
    v = np.sort(np.asarray(rewards, dtype=np.float64).ravel())
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan")
    if np.isfinite(v).all():
        return float(np.quantile(v, q))
    position = q * (v.size - 1)
    lo, hi = int(np.floor(position)), int(np.ceil(position))
    a, b, t = float(v[lo]), float(v[hi]), position - lo
    if t == 0 or a == b:
        return a
    if a == -np.inf and b == np.inf:
        return a if t < 0.5 else b
    if a == -np.inf or b == np.inf:
        return a if a == -np.inf else b
    return a + (b - a) * t
