"""Batch generation in shards: written atomically, verified on resume, identical after a crash.

A run of `num_samples` samples is cut into shards of `shard_size` consecutive sample indices.
Each shard is sampled with `svdd.sample` and written to `out/shards/shard-KKKKK.json` through a
temporary file and an atomic rename, so a run that dies (a crash, Ctrl-C, a killed job) leaves
only complete shards behind. Running the same command again skips the shards that are present
and valid and redoes the others; a shard that fails to parse, belongs to other settings, or
whose checksum does not match its content is reported and redone, never used.

Sample i draws its randomness from its own generator, seeded from (seed, i), so for methods whose
samples do not interact (pretrained, svdd, dps) sample i is the same whatever the shard size,
the number of workers or the resumptions. Methods that couple a batch (best_of_n, smc, svdd_r)
couple the samples of one shard; a run is then reproducible for a fixed shard size, which is
part of the recorded settings.

Shards may run on any `concurrent.futures.Executor` (processes locally, Ray when installed); the
job that builds the process and the reward must then be picklable (see `Job`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import platform
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from .api import check_arguments, sample
from .outputs import check_table_format, sample_text, write_staged, write_table
from .rewards import Reward, RewardError, evaluate, reward_name

SHARD_FORMAT = "svdd-shard/1"


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
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {self.seed!r}")

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_samples / self.shard_size)

    def shard_range(self, k: int) -> tuple[int, int]:
        """(start, count) of shard k."""
        start = k * self.shard_size
        return start, min(self.shard_size, self.num_samples - start)

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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
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


def _checksum(samples: list, rewards: list, columns: dict) -> str:
    return hashlib.sha256(json.dumps([samples, rewards, columns], sort_keys=True).encode()).hexdigest()


def _json_number(v: Any) -> Any:
    """A column value JSON can hold: NaN -> None, numpy scalars -> Python numbers."""
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, fsync and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_shard(out_dir: Path, settings: RunSettings, k: int) -> tuple[dict | None, str]:
    """(payload, "") for a valid shard k, else (None, why it is missing or unusable)."""
    path = shard_path(out_dir, k)
    if not path.exists():
        return None, "missing"
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({exc.__class__.__name__})"
    start, count = settings.shard_range(k)
    expected = {"format": SHARD_FORMAT, "settings": settings.digest(), "shard": k, "start": start, "count": count}
    for key, value in expected.items():
        if payload.get(key) != value:
            return None, f"{key} is {payload.get(key)!r}, expected {value!r}"
    samples, rewards, columns = payload.get("samples"), payload.get("rewards"), payload.get("columns", {})
    if not isinstance(samples, list) or not isinstance(rewards, list) or len(samples) != count or len(rewards) != count:
        return None, "wrong number of samples"
    if not isinstance(columns, dict) or any(not isinstance(v, list) or len(v) != count for v in columns.values()):
        return None, "malformed columns"
    if payload.get("checksum") != _checksum(samples, rewards, columns):
        return None, "checksum mismatch"
    missing = [s for s in samples if isinstance(s, str) and s.startswith("samples/") and not (out_dir / s).exists()]
    if missing:
        return None, f"sample file {missing[0]} is missing"
    return payload, ""


def run_shard(job: Job, settings: RunSettings, out_dir: str | Path, k: int) -> dict:
    """Sample shard k and write it atomically; returns its summary. Module-level for pickling."""
    out_dir = Path(out_dir)
    process, reward, value = _built(job)
    start, count = settings.shard_range(k)
    failures_before = reward.failures
    res = sample(process, reward, method=settings.method, value=value, num_samples=count,
                 num_candidates=settings.num_candidates, alpha=settings.alpha,
                 generator=sample_generators(settings.seed, start, count),
                 max_batch=settings.max_batch if settings.max_batch is not None else "auto",
                 progress=False, **settings.options)
    encode = getattr(job, "encode", None) or encode_sample
    samples = [encode(obj, start + i, out_dir) for i, obj in enumerate(res.samples)]
    rewards = [None if not math.isfinite(r) else float(r) for r in res.rewards]
    columns = {name: [_json_number(v) for v in values]
               for name, values in (job.columns(process, res.samples) if hasattr(job, "columns") else {}).items()}
    payload = {
        "format": SHARD_FORMAT, "settings": settings.digest(), "shard": k, "start": start, "count": count,
        "samples": samples, "rewards": rewards, "columns": columns, "checksum": _checksum(samples, rewards, columns),
        "stats": {key: v for key, v in res.stats.items() if isinstance(v, (int, float))},
        "reward_failures": reward.failures - failures_before,
    }
    write_atomic(shard_path(out_dir, k), json.dumps(payload))
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


# -- the run -------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What `generate` returns: the final samples (records), rewards and the run record."""

    samples: list[Any]
    rewards: np.ndarray
    record: dict[str, Any]


def check_job(job: Job, settings: RunSettings, num: int = 2) -> None:
    """Fail fast, before anything is written: the job's names resolve, the sampler accepts the
    settings with the job's process and reward (`svdd.check_arguments`), and a few cheap
    pretrained samples go through the reward, whose output must be one number per object (a
    RewardError says what it returned). Exceptions on items are allowed (they become NaN)."""
    if hasattr(job, "check"):
        job.check()
    process, reward, value = job.build()
    count = min(settings.shard_size, settings.num_samples)
    check_arguments(process, reward, method=settings.method, value=value, num_samples=count,
                    num_candidates=settings.num_candidates, alpha=settings.alpha,
                    generator=sample_generators(settings.seed, 0, count),
                    max_batch=settings.max_batch if settings.max_batch is not None else "auto",
                    options=settings.options)
    res = sample(process, lambda objs: [0.0] * len(objs), method="pretrained", num_samples=num,
                 num_candidates=1, generator=torch.Generator().manual_seed(0), progress=False)
    try:
        evaluate(reward, res.samples)
    except RewardError as exc:
        if exc.__cause__ is None:  # a bad output, not an exception on an item
            raise


def prepare_out_dir(out_dir: Path, settings: RunSettings, clean_temporary: bool = True) -> dict | None:
    """Create `out_dir` (checking it is writable) and return the existing run record, if any.

    Raises if the directory holds a run made with other settings. `clean_temporary` removes the
    temporary files of a run killed while writing (not with several ranks, which write at once).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        write_atomic(probe, "ok")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"cannot write to the output directory {out_dir}: {exc.strerror or exc}") from exc
    if clean_temporary:
        for tmp in list(out_dir.glob("shards/*.tmp*")) + list(out_dir.glob("samples/*.tmp")):
            tmp.unlink()  # leftovers of a run that was killed while writing
    record_path = out_dir / "run.json"
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    if record.get("settings_digest") != settings.digest():
        raise ValueError(
            f"{out_dir} holds a run made with other settings ({_settings_diff(record.get('settings', {}), settings)}); "
            "use another output directory to start a new run"
        )
    return record


def _settings_diff(old: dict, settings: RunSettings) -> str:
    new = json.loads(json.dumps(asdict(settings), default=str))
    diffs = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in new if k != "num_samples" and old.get(k) != new[k]]
    return "; ".join(diffs) or "different settings"


def environment() -> dict[str, Any]:
    """Versions and machine, for the run record."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("svdd", "torch", "numpy", "diffusers", "rdkit", "viennarna", "selfies"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {"versions": versions, "python": platform.python_version(), "machine": platform.platform(),
            "processor": platform.machine(), "cpus": os.cpu_count()}


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process in a multi-process launch (`accelerate launch`,
    `torchrun`: the RANK and WORLD_SIZE variables), else (0, 1)."""
    try:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise ValueError("RANK and WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return rank, world


def generate(job: Job, settings: RunSettings, out_dir: str | Path, *, executor: Executor | None = None,
             progress: bool = True, log: Callable[[str], None] = print, poll_s: float = 2.0,
             table_format: str = "csv", command: str | None = None) -> RunSummary | None:
    """Run (or resume) a sharded generation into `out_dir`.

    Every check (the job's names, the sampler's settings, the reward's output, the table format)
    runs before anything is written. Then writes `shards/`, the sample table `samples.csv` or
    `samples.parquet` (`table_format`; index, sample, reward and the job's extra columns), the
    job's own formats (`job.write`: FASTA, SDF) and `run.json` (settings, seed, the `command`
    that started it, versions, machine, compute counters summed over shards, reward failures,
    wall time). With an `executor`, shards run on it (each worker builds the job once);
    otherwise in this process.

    Launched as several processes (`accelerate launch`, `torchrun`; see `process_rank`), rank r
    samples the shards k with k % world == r (the samples do not depend on the rank: seeds are
    per sample), only rank 0 shows progress, and rank 0 waits for every shard, then writes the
    outputs; the other ranks return None once their shards are written.
    """
    out_dir = Path(out_dir)
    if not str(out_dir).strip():
        raise ValueError("the output directory is empty; name one (e.g. --out runs/my-run)")
    rank, world = process_rank()
    check_table_format(table_format)
    check_job(job, settings)
    previous = prepare_out_dir(out_dir, settings, clean_temporary=world == 1)
    record = {
        "command": command,
        "world_size": world,
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
        "settings_digest": settings.digest(),
        "environment": environment(),
        "started": previous["started"] if previous else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "running",
    }
    if rank == 0:
        write_atomic(out_dir / "run.json", json.dumps(record, indent=2))

    payloads: dict[int, dict] = {}
    todo = []
    for k in range(settings.num_shards):
        payload, why = read_shard(out_dir, settings, k)
        if payload is not None:
            payloads[k] = payload
        else:
            if why != "missing":
                log(f"shard {k} is unusable ({why}); redoing it")
            todo.append(k)
    todo = [k for k in todo if k % world == rank]
    progress = progress and rank == 0
    done = sum(p["count"] for p in payloads.values())
    if done:
        log(f"resuming: {len(payloads)} of {settings.num_shards} shards already complete")
    start_time = time.perf_counter()
    bar = tqdm(total=settings.num_samples, initial=done, desc="samples", unit="sample",
               disable=not progress, dynamic_ncols=True)
    rewards_so_far = [r for p in payloads.values() for r in p["rewards"] if r is not None]
    try:
        for payload in _run_shards(job, settings, out_dir, todo, executor):
            payloads[payload["shard"]] = payload
            rewards_so_far.extend(r for r in payload["rewards"] if r is not None)
            bar.update(payload["count"])
            median = f"{np.median(rewards_so_far):.4g}" if rewards_so_far else "nan"
            bar.set_postfix(median_reward=median, refresh=False)
            if not progress and rank == 0:
                done += payload["count"]
                log(f"shard {payload['shard']} written: {done}/{settings.num_samples} samples, "
                    f"median reward {median}, {time.perf_counter() - start_time:.1f}s")
    finally:
        bar.close()
    if rank != 0:
        return None
    while len(payloads) < settings.num_shards:  # other ranks are still sampling theirs
        time.sleep(poll_s)
        for k in range(settings.num_shards):
            if k not in payloads:
                payload, _ = read_shard(out_dir, settings, k)
                if payload is not None:
                    payloads[k] = payload

    ordered = [payloads[k] for k in range(settings.num_shards)]
    samples = [s for p in ordered for s in p["samples"]]
    rewards = np.array([np.nan if r is None else r for p in ordered for r in p["rewards"]], dtype=np.float64)
    names = list(dict.fromkeys(name for p in ordered for name in p.get("columns", {})))
    columns = {name: [v for p in ordered for v in p.get("columns", {}).get(name, [None] * p["count"])]
               for name in names}
    totals: dict[str, float] = {}
    for p in ordered:
        for key, v in p["stats"].items():
            totals[key] = totals.get(key, 0) + v
    table = {"index": list(range(len(samples))), "sample": [sample_text(x) for x in samples],
             "reward": [None if np.isnan(r) else float(r) for r in rewards], **columns}
    files = [write_table(out_dir / f"samples.{table_format}", table, table_format)]
    if hasattr(job, "write"):
        files += write_staged(out_dir, lambda staging: job.write(staging, samples, rewards, columns))
    ok = rewards[np.isfinite(rewards)]
    record.update({
        "outputs": [str(f.relative_to(out_dir)) for f in files],
        "status": "complete",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_time_s_this_invocation": time.perf_counter() - start_time,
        "shards_done_this_invocation": len(todo),
        "stats": totals,
        "reward_failures": int(sum(p.get("reward_failures", 0) for p in ordered)),
        "invalid_samples": int(rewards.size - ok.size),
        "reward_median": float(np.median(ok)) if ok.size else None,
        "reward_p90": float(np.quantile(ok, 0.9)) if ok.size else None,
    })
    write_atomic(out_dir / "run.json", json.dumps(record, indent=2))
    return RunSummary(samples, rewards, record)


def _run_shards(job: Job, settings: RunSettings, out_dir: Path, todo: list[int],
                executor: Executor | None) -> Iterable[dict]:
    if executor is None:
        for k in todo:
            yield run_shard(job, settings, out_dir, k)
        return
    n = len(todo)
    yield from executor.map(run_shard, [job] * n, [settings] * n, [str(out_dir)] * n, todo)
