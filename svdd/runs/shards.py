"""Shards: the unit of work of a run, and how each is sampled, written and verified.

A shard is `shard_size` consecutive sample indices sampled by one `svdd.sample` call and
written as one JSON file (`shards/shard-KKKKK.json`) with its samples, rewards, extra columns,
compute counters, the SHA-256 of every file its samples were written to (PNGs under
`samples/`) and a checksum over all of them. `read_shard` accepts a shard only when its
format, settings, position, lengths, checksum and files all match; anything else is redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..api import sample
from ..rewards import Reward, reward_name
from .rundir import set_aside, write_atomic

SHARD_FORMAT = "svdd-shard/2"
MAX_SAMPLES = 2**31 - 1  # the most samples one run numbers (a mistyped -n fails fast instead of never ending)


class Job(Protocol):
    """What a run samples from. Must be picklable to run shards on a process pool or Ray.

    build() -> (process, reward, value): value may be None (PM on the reward).
    Optional methods:
    check() -> None: raise if a name the job holds does not resolve (before anything is built).
    encode(obj, index, out_dir) -> a JSON-able record of one sample (e.g. a string, or the
        relative path of a PNG it wrote); `encode_sample` is the default.
    columns(process, samples) -> {name: list}: extra per-sample columns of the sample table.
    write(out_dir, samples, rewards, columns) -> [paths]: files in a domain's own formats.
    """

    def build(self) -> tuple[Any, Callable, Any]: ...


@dataclass(frozen=True)
class RunSettings:
    """Everything that determines a run's samples (recorded in run.json and in every shard)."""

    num_samples: int
    method: str = "svdd"
    num_candidates: int = 10
    alpha: float = 0.0
    seed: int = 0
    shard_size: int = 64
    max_batch: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    description: dict[str, Any] = field(default_factory=dict)  # domain, reward, model names...

    def __post_init__(self) -> None:
        for name in ("num_samples", "num_candidates", "shard_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {v!r}")
        if self.num_samples > MAX_SAMPLES:
            raise ValueError(f"num_samples must be at most {MAX_SAMPLES}; got {self.num_samples}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {self.seed!r}")

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_samples / self.shard_size)

    def shard_range(self, k: int) -> tuple[int, int]:
        """(start, count) of shard k."""
        start = k * self.shard_size
        return start, min(self.shard_size, self.num_samples - start)

    def sampler_arguments(self, start: int, count: int) -> dict[str, Any]:
        """The `svdd.sample` arguments of samples [start, start + count), but for the options
        (given separately: `check_arguments` takes them as one dict, `sample` as keywords)."""
        return {
            "method": self.method,
            "num_samples": count,
            "num_candidates": self.num_candidates,
            "alpha": self.alpha,
            "generator": sample_generators(self.seed, start, count),
            "max_batch": self.max_batch if self.max_batch is not None else "auto",
        }

    def digest(self) -> str:
        """A hash of the settings that decide the samples (not num_samples: a run can grow)."""
        data = asdict(self)
        data.pop("num_samples")
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sample_generators(seed: int, start: int, count: int) -> list[torch.Generator]:
    """One generator per sample index in [start, start + count), seeded from (seed, index)."""
    gens = []
    for i in range(start, start + count):
        state = np.random.SeedSequence([seed, i]).generate_state(1, dtype=np.uint64)[0]
        gens.append(torch.Generator().manual_seed(int(state)))
    return gens


# -- sample encoding -----------------------------------------------------------------------


def encode_sample(obj: Any, index: int, out_dir: Path) -> Any:
    """JSON-able record of one decoded sample.

    Strings and numbers as they are; tuples and lists as lists; images (tensors or arrays [C,H,W]
    or [H,W] in [0, 1], or PIL images) as PNG files `samples/{index:07d}.png`, written
    atomically, recorded by their path relative to `out_dir`.
    """
    if isinstance(obj, (str, int, float)) or obj is None:
        return obj
    if isinstance(obj, (tuple, list)) and all(isinstance(v, (str, int, float)) for v in obj):
        return list(obj)
    image = _as_pil(obj)
    if image is None:
        raise TypeError(f"cannot record a sample of type {type(obj).__name__}; give the job an encode() method")
    rel = Path("samples") / f"{index:07d}.png"
    path = out_dir / rel
    if (path.parent.exists() or path.parent.is_symlink()) and not path.parent.is_dir():
        set_aside(path.parent)  # a file or a broken link named samples: damage, kept aside
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    write_atomic(path, buf.getvalue())
    return str(rel)


def _as_pil(obj: Any):
    if type(obj).__module__.startswith("PIL."):
        return obj
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        from PIL import Image

        a = obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else np.asarray(obj)
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a.transpose(1, 2, 0)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        return Image.fromarray((np.clip(np.nan_to_num(a), 0, 1) * 255).round().astype(np.uint8))
    return None


# -- shard files -----------------------------------------------------------------------------


def shard_path(out_dir: Path, k: int) -> Path:
    return out_dir / "shards" / f"shard-{k:05d}.json"


def _checksum(samples: list, rewards: list, columns: dict, stats: dict, files: dict | None = None) -> str:
    """SHA-256 of everything a shard contributes to the run's outputs and counters (`files`:
    {relative path: SHA-256 of its bytes}, left out of the sum when the shard has none)."""
    content = json.dumps([samples, rewards, columns, stats, *([files] if files else [])], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()


def _file_digest(path: Path) -> str | None:
    """SHA-256 of a regular file's bytes; None when it is missing or not a regular file."""
    try:
        if not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _sample_files(out_dir: Path, samples: list) -> dict[str, str]:
    """{path: SHA-256} of the files under `samples/` that encoded samples name."""
    named = [s for s in samples if isinstance(s, str) and s.startswith("samples/")]
    digests = {rel: _file_digest(out_dir / rel) for rel in named}
    return {rel: d for rel, d in digests.items() if d is not None}


def _json_number(v: Any) -> Any:
    """A value JSON can hold: NaN -> None, numpy scalars -> Python numbers (±inf stay floats,
    written as ±Infinity by Python's json)."""
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def read_shard(out_dir: Path, settings: RunSettings, k: int) -> tuple[dict | None, str]:
    """(payload, "") for a valid shard k, else (None, why it is missing or unusable)."""
    path = shard_path(out_dir, k)
    if not path.exists():
        return None, "missing"
    if not path.is_file():
        return None, "not a file"
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({exc.__class__.__name__})"
    if not isinstance(payload, dict):
        return None, f"not a shard (a JSON {type(payload).__name__})"
    start, count = settings.shard_range(k)
    expected = {"format": SHARD_FORMAT, "settings": settings.digest(), "shard": k, "start": start, "count": count}
    for key, value in expected.items():
        if payload.get(key) != value:
            return None, f"{key} is {payload.get(key)!r}, expected {value!r}"
    samples, rewards = payload.get("samples"), payload.get("rewards")
    columns, stats, files = payload.get("columns", {}), payload.get("stats"), payload.get("files")
    if not isinstance(samples, list) or not isinstance(rewards, list) or len(samples) != count or len(rewards) != count:
        return None, "wrong number of samples"
    if not isinstance(columns, dict) or any(not isinstance(v, list) or len(v) != count for v in columns.values()):
        return None, "malformed columns"
    if not isinstance(stats, dict) or not all(isinstance(v, (int, float)) for v in stats.values()):
        return None, "missing or malformed stats"
    if files is not None and not isinstance(files, dict):
        return None, "malformed files"
    if payload.get("checksum") != _checksum(samples, rewards, columns, stats, files):
        return None, "checksum mismatch"
    missing = [s for s in samples if isinstance(s, str) and s.startswith("samples/") and not (out_dir / s).is_file()]
    if missing:
        return None, f"sample file {missing[0]} is missing"
    for rel, digest in (files or {}).items():
        if _file_digest(out_dir / rel) != digest:
            return None, f"sample file {rel} is damaged (its content changed since the shard was written)"
    return payload, ""


def progress_path(out_dir: Path, k: int) -> Path:
    """Where a shard running in another process reports the fraction of its steps done."""
    return out_dir / "shards" / f"shard-{k:05d}.progress"


def read_progress(out_dir: Path, k: int) -> float:
    """The fraction of shard k's denoising steps done, as its worker last reported (0 if unknown)."""
    try:
        return min(1.0, max(0.0, float(progress_path(out_dir, k).read_text())))
    except (OSError, ValueError):
        return 0.0


def run_shard(
    job: Job,
    settings: RunSettings,
    out_dir: str | Path,
    k: int,
    *,
    report_to_file: bool = False,
    report: Callable[[float], None] | None = None,
) -> dict:
    """Sample shard k and write it atomically; returns its summary. Module-level for pickling.

    After every denoising step the fraction done goes to `report(fraction)`, and with
    `report_to_file` to `progress_path(out_dir, k)` (for a run watching workers in other processes).
    """
    out_dir = Path(out_dir)
    process, reward, value = _built(job)
    start, count = settings.shard_range(k)
    failures_before = reward.failures

    def on_step(info: dict[str, Any]) -> None:
        fraction = info["step"] / info["num_steps"]
        if report is not None:
            report(fraction)
        if report_to_file:
            with contextlib.suppress(OSError):
                progress_path(out_dir, k).write_text(f"{fraction:.4f}")

    res = sample(
        process,
        reward,
        value=value,
        **settings.sampler_arguments(start, count),
        progress=False,
        callback=on_step if (report is not None or report_to_file) else None,
        **settings.options,
    )
    encode = getattr(job, "encode", None) or encode_sample
    samples = [encode(obj, start + i, out_dir) for i, obj in enumerate(res.samples)]
    rewards = [_json_number(float(r)) for r in res.rewards]  # NaN (invalid) -> null; +-inf kept
    columns = {
        name: [_json_number(v) for v in values]
        for name, values in (job.columns(process, res.samples) if hasattr(job, "columns") else {}).items()
    }
    stats = {key: v for key, v in res.stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    stats["reward_failures"] = reward.failures - failures_before
    files = _sample_files(out_dir, samples)
    payload = {
        "format": SHARD_FORMAT,
        "settings": settings.digest(),
        "shard": k,
        "start": start,
        "count": count,
        "samples": samples,
        "rewards": rewards,
        "columns": columns,
        "stats": stats,
        **({"files": files} if files else {}),
        "checksum": _checksum(samples, rewards, columns, stats, files),
    }
    path = shard_path(out_dir, k)
    write_atomic(path, json.dumps(payload))  # a directory in the shard's place is set aside, kept
    with contextlib.suppress(OSError):
        progress_path(out_dir, k).unlink()
    return payload


_BUILT: dict[str, tuple[Any, Reward, Any]] = {}


def _built(job: Job) -> tuple[Any, Reward, Any]:
    """The job's (process, reward, value), built once per worker process; the reward is wrapped
    so that objects it raises on score NaN (counted) instead of ending the run."""
    try:
        key = hashlib.sha256(pickle.dumps(job)).hexdigest()
    except Exception:  # an unpicklable job only runs in this process
        key = f"id-{id(job)}"
    if key not in _BUILT:
        process, reward, value = job.build()
        if not (isinstance(reward, Reward) and reward.on_error != "raise"):
            reward = Reward(reward, on_error="nan", name=reward_name(reward))
        _BUILT.clear()
        _BUILT[key] = (process, reward, value)
    return _BUILT[key]
