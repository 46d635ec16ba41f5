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

import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import platform
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from .api import check_arguments, sample
from .outputs import check_table_format, sample_text, write_staged, write_table
from .rewards import Reward, RewardError, evaluate, reward_name
from .rundir import RunDirectory, write_atomic

SHARD_FORMAT = "svdd-shard/2"


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


def _checksum(samples: list, rewards: list, columns: dict, stats: dict) -> str:
    """SHA-256 of everything a shard contributes to the run's outputs and counters."""
    content = json.dumps([samples, rewards, columns, stats], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()


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
    columns, stats = payload.get("columns", {}), payload.get("stats")
    if not isinstance(samples, list) or not isinstance(rewards, list) or len(samples) != count or len(rewards) != count:
        return None, "wrong number of samples"
    if not isinstance(columns, dict) or any(not isinstance(v, list) or len(v) != count for v in columns.values()):
        return None, "malformed columns"
    if not isinstance(stats, dict) or not all(isinstance(v, (int, float)) for v in stats.values()):
        return None, "missing or malformed stats"
    if payload.get("checksum") != _checksum(samples, rewards, columns, stats):
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
    rewards = [_json_number(float(r)) for r in res.rewards]  # NaN (invalid) -> null; +-inf kept
    columns = {name: [_json_number(v) for v in values]
               for name, values in (job.columns(process, res.samples) if hasattr(job, "columns") else {}).items()}
    stats = {key: v for key, v in res.stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    stats["reward_failures"] = reward.failures - failures_before
    payload = {
        "format": SHARD_FORMAT, "settings": settings.digest(), "shard": k, "start": start, "count": count,
        "samples": samples, "rewards": rewards, "columns": columns, "stats": stats,
        "checksum": _checksum(samples, rewards, columns, stats),
    }
    path = shard_path(out_dir, k)
    if path.exists() and not path.is_file():  # a directory in the shard's place: move it aside, keep it
        path.rename(path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"))
    write_atomic(path, json.dumps(payload))
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


def read_record(out_dir: Path, settings: RunSettings, log: Callable[[str], None]) -> dict | None:
    """The run record already in `out_dir` (None if there is none or it is damaged).

    Raises ValueError when the directory holds a run made with other settings: its run.json
    says so, or, when run.json is damaged, one of its shards does.
    """
    path = out_dir / "run.json"
    if not path.exists():
        record = None
    else:
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or "settings_digest" not in record:
                raise ValueError(f"a JSON {type(record).__name__} without settings_digest")
        except (OSError, ValueError) as exc:
            log(f"{path} is damaged ({exc.__class__.__name__}: {str(exc)[:80]}); the shards are checked one by "
                "one and run.json is written anew")
            record = None
    if record is not None and record.get("settings_digest") != settings.digest():
        raise ValueError(f"{out_dir} holds a run made with other settings "
                         f"({_settings_diff(record.get('settings', {}), settings)}); "
                         "use another output directory to start a new run")
    if record is None:
        for shard in sorted((out_dir / "shards").glob("shard-*.json"))[:64]:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                digest = json.loads(shard.read_text()).get("settings")
                if digest is not None and digest != settings.digest():
                    raise ValueError(f"{out_dir} holds shards of a run made with other settings ({shard.name}); "
                                     "use another output directory to start a new run")
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
             table_format: str = "csv", command: str | None = None, cooperate: bool = False) -> RunSummary | None:
    """Run (or resume) a sharded generation into `out_dir`.

    Every check (the job's names, the sampler's settings, the reward's output, the table format)
    runs before anything is written. Then writes `shards/`, the sample table `samples.csv` or
    `samples.parquet` (`table_format`; index, sample, reward and the job's extra columns), the
    job's own formats (`job.write`: FASTA, SDF) and `run.json` (settings, seed, the `command`
    that started it, versions, machine, compute counters summed over shards, reward failures,
    wall time). With an `executor`, shards run on it (each worker builds the job once);
    otherwise in this process.

    The directory is locked (`svdd.rundir`): a second run on it is refused, unless both
    `cooperate` (same settings): then they share the shards through claim files, and each
    writes the same outputs when all shards are done. Launched as several processes
    (`accelerate launch`, `torchrun`; see `process_rank`), the ranks cooperate: rank r starts
    with the shards k % world == r, only rank 0 shows progress and writes the outputs, and the
    other ranks return None once their shards are written.
    """
    out_dir = Path(out_dir)
    if not str(out_dir).strip() or str(out_dir) == ".":
        raise ValueError(f"the output directory must be named (e.g. runs/my-run); got {str(out_dir)!r}")
    rank, world = process_rank()
    check_table_format(table_format)
    check_job(job, settings)
    run_dir = RunDirectory(out_dir)
    try:
        run_dir.acquire(shared=cooperate or world > 1)
    except OSError as exc:
        raise PermissionError(f"cannot write to the output directory {out_dir}: {exc.strerror or exc}") from exc
    try:
        return _generate(job, settings, run_dir, rank, world, executor=executor, progress=progress, log=log,
                         poll_s=poll_s, table_format=table_format, command=command)
    finally:
        run_dir.release()


def _generate(job: Job, settings: RunSettings, run_dir: RunDirectory, rank: int, world: int, *,
              executor: Executor | None, progress: bool, log: Callable[[str], None], poll_s: float,
              table_format: str, command: str | None) -> RunSummary | None:
    out_dir = run_dir.root
    previous = read_record(out_dir, settings, log)
    run_dir.clean_leftovers()
    record = {
        "command": command,
        "world_size": world,
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
        "settings_digest": settings.digest(),
        "environment": environment(),
        "started": previous["started"] if previous else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "running",
    }
    if rank == 0 and (previous is None or previous.get("status") != "running" or not run_dir.shared):
        write_atomic(out_dir / "run.json", json.dumps(record, indent=2))

    payloads: dict[int, dict] = {}
    todo = []
    for k in range(settings.num_shards):
        payload, why = read_shard(out_dir, settings, k)
        if payload is not None:
            payloads[k] = payload
        else:
            if why != "missing":
                log(f"shard {k} is unusable ({why}): {shard_path(out_dir, k)}; redoing it")
            todo.append(k)
    if world > 1:  # each rank starts with its own shards; rank 0 takes over what is left at the end
        todo = [k for k in todo if k % world == rank]
    progress = progress and rank == 0
    done = sum(p["count"] for p in payloads.values())
    if done:
        log(f"resuming: {len(payloads)} of {settings.num_shards} shards already complete")
    start_time = time.perf_counter()
    bar = tqdm(total=settings.num_samples, initial=done, desc="samples", unit="sample",
               disable=not progress, dynamic_ncols=True)
    rewards_so_far = [r for p in payloads.values() for r in p["rewards"] if r is not None]
    done_here = 0

    def record_shard(payload: dict, mine: bool = True) -> None:
        nonlocal done, done_here
        payloads[payload["shard"]] = payload
        rewards_so_far.extend(r for r in payload["rewards"] if r is not None)
        bar.update(payload["count"])
        done, done_here = done + payload["count"], done_here + int(mine)
        median = f"{np.median(rewards_so_far):.4g}" if rewards_so_far else "nan"
        bar.set_postfix(median_reward=median, refresh=False)
        if not progress and mine:
            log(f"shard {payload['shard']} written: {done}/{settings.num_samples} samples, "
                f"median reward {median}, {time.perf_counter() - start_time:.1f}s")

    try:
        for payload in _run_shards(job, settings, run_dir, todo, executor):
            record_shard(payload)
        if rank != 0:
            return None
        while len(payloads) < settings.num_shards:  # shards of other workers or ranks
            waiting = [k for k in range(settings.num_shards) if k not in payloads]
            for k in waiting:
                payload, _ = read_shard(out_dir, settings, k)
                if payload is not None:
                    record_shard(payload, mine=False)
            orphans = [k for k in range(settings.num_shards)
                       if k not in payloads and not run_dir.claimed_by_live_worker(k)]
            for payload in _run_shards(job, settings, run_dir, orphans, executor):  # nobody is on them
                record_shard(payload)
            if len(payloads) < settings.num_shards:
                time.sleep(poll_s)
    finally:
        bar.close()

    with run_dir.finalizing():
        summary = _write_outputs(job, settings, out_dir, payloads, record, table_format)
    summary.record["wall_time_s_this_invocation"] = time.perf_counter() - start_time
    summary.record["shards_done_this_invocation"] = done_here
    write_atomic(out_dir / "run.json", json.dumps(summary.record, indent=2))
    run_dir.clean_leftovers()
    return summary


def _write_outputs(job: Job, settings: RunSettings, out_dir: Path, payloads: dict[int, dict], record: dict,
                   table_format: str) -> RunSummary:
    """The sample table, the job's own formats and the completed run record, from every shard."""
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
    failures = int(totals.pop("reward_failures", 0))
    table = {"index": list(range(len(samples))), "sample": [sample_text(x) for x in samples],
             "reward": [None if np.isnan(r) else float(r) for r in rewards], **columns}
    files = [write_table(out_dir / f"samples.{table_format}", table, table_format)]
    if hasattr(job, "write"):
        files += write_staged(out_dir, lambda staging: job.write(staging, samples, rewards, columns))
    scored = rewards[~np.isnan(rewards)]  # +inf is a valid (best) reward, NaN an invalid sample
    record = {**record,
              "outputs": [str(f.relative_to(out_dir)) for f in files],
              "status": "complete",
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "stats": totals,
              "reward_failures": failures,
              "invalid_samples": int(rewards.size - scored.size),
              "reward_median": float(np.median(scored)) if scored.size else None,
              "reward_p90": float(np.quantile(scored, 0.9)) if scored.size else None}
    return RunSummary(samples, rewards, record)


def _run_shards(job: Job, settings: RunSettings, run_dir: RunDirectory, todo: list[int],
                executor: Executor | None) -> Iterator[dict]:
    """Sample the shards of `todo` that this process can claim, yielding each one written.

    A shard another worker holds is skipped; one that became valid meanwhile is not redone.
    With an executor, at most as many shards as it has workers are in flight at once.
    """
    out_dir = run_dir.root

    def take(k: int) -> bool:
        if not run_dir.claim(k):
            return False
        if read_shard(out_dir, settings, k)[0] is not None:  # finished by another worker meanwhile
            run_dir.unclaim(k)
            return False
        return True

    if executor is None:
        for k in todo:
            if take(k):
                try:
                    yield run_shard(job, settings, out_dir, k)
                finally:
                    run_dir.unclaim(k)
        return
    window = max(1, getattr(executor, "_max_workers", 0) or 2)
    pending: dict[Future, int] = {}
    queue = list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < window:
                k = queue.pop(0)
                if take(k):
                    pending[executor.submit(run_shard, job, settings, str(out_dir), k)] = k
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                k = pending.pop(future)
                run_dir.unclaim(k)
                yield future.result()
    finally:
        for future, k in pending.items():
            future.cancel()
            run_dir.unclaim(k)
