"""Summary statistics shared by the benchmark tables: bootstrap intervals and diversity measures."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def bootstrap_ci(values: np.ndarray, stat, *, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat(values)` (values float [n], NaN-free)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(resamples, values.size))
    stats = np.array([stat(values[row]) for row in draws])
    low, high = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def reward_quantiles(rewards: np.ndarray) -> dict:
    """Median, 90th percentile, mean and max of the valid (finite) rewards float [n], the number
    of invalid (NaN) ones and the valid share; NaN statistics when none is valid."""
    r = np.asarray(rewards, dtype=np.float64)
    ok = r[np.isfinite(r)]
    if ok.size == 0:
        return {"median": float("nan"), "p90": float("nan"), "mean": float("nan"), "max": float("nan"),
                "invalid": int(r.size), "valid": 0.0}
    return {"median": float(np.median(ok)), "p90": float(np.quantile(ok, 0.9)), "mean": float(ok.mean()),
            "max": float(ok.max()), "invalid": int(r.size - ok.size), "valid": ok.size / r.size}


def median_p90(rewards: np.ndarray, seed: int = 0) -> dict:
    """Median and 90th percentile of the valid (finite) rewards, each with a 95% bootstrap interval."""
    r = np.asarray(rewards, dtype=np.float64)
    ok = r[np.isfinite(r)]
    if ok.size == 0:
        return {"median": float("nan"), "p90": float("nan"), "median_ci": [float("nan")] * 2,
                "p90_ci": [float("nan")] * 2, "valid": 0.0}

    def p90(v: np.ndarray) -> float:
        return float(np.quantile(v, 0.9))

    return {"median": float(np.median(ok)), "median_ci": list(bootstrap_ci(ok, np.median, seed=seed)),
            "p90": p90(ok), "p90_ci": list(bootstrap_ci(ok, p90, seed=seed)),
            "mean": float(ok.mean()), "valid": ok.size / r.size}


def one_hot_distance(tokens: torch.Tensor) -> float:
    """Mean pairwise distance of token sequences Long[n, L]: the share of positions that differ
    (half the squared distance of the one-hot encodings, over L), averaged over all pairs."""
    n = tokens.shape[0]
    if n < 2:
        return float("nan")
    differ = (tokens[:, None, :] != tokens[None, :, :]).double().mean(-1)
    return float(differ.sum() / (n * (n - 1)))


def cosine_distance(features: torch.Tensor) -> float:
    """Mean pairwise 1 - cosine similarity of feature vectors float[n, d]."""
    n = features.shape[0]
    if n < 2:
        return float("nan")
    unit = torch.nn.functional.normalize(features.double(), dim=1)
    sim = unit @ unit.T
    return float((n * n - sim.sum()) / (n * (n - 1)))


def uniqueness(items: Sequence) -> float:
    """Share of distinct items (None counts as one item)."""
    return len(set(items)) / max(len(items), 1)
