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
import functools
import json
import os
import platform
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..api import check_arguments, sample
from ..result import reward_quantile
from ..rewards import RewardError, evaluate
from .outputs import check_table_format, sample_text, write_staged, write_table
from .rundir import CLAIM_TIMEOUT_S, RunDirectory, RunWriteError, set_aside, write_atomic
from .shards import (
    Job,
    RunSettings,
    encode_sample,
    read_progress,
    read_shard,
    run_shard,
    shard_path,
)

__all__ = [
    "Job",
    "RunError",
    "RunSettings",
    "RunSummary",
    "ShardError",
    "check_job",
    "environment",
    "generate",
    "process_rank",
    "read_record",
    "read_shard",
    "run_shard",
    "shard_path",
]


# -- the run -------------------------------------------------------------------------------


class RunError(RuntimeError):
    """The job's own code (model, reward, value, encoder) failed during a run; the message names
    the exception and where it was raised (a trial before anything is written: this class)."""


class ShardError(RunError):
    """The job's own code failed while sampling a shard; the message names the shard. The
    shards already written are kept, and rerunning the command resumes from them."""


def _where(exc: BaseException) -> str:
    """`ExcType: message (at file.py:line)`, the line being the innermost frame that raised it
    (in a worker process too: its traceback comes back as text in the exception's cause)."""
    remote = getattr(exc.__cause__, "tb", None)  # concurrent.futures' _RemoteTraceback
    frame: tuple[str, int | None] | None = None
    if isinstance(remote, str):
        found = re.findall(r'File "([^"]+)", line (\d+)', remote)
        frame = (found[-1][0], int(found[-1][1])) if found else None
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        frame = (frames[-1].filename, frames[-1].lineno) if frames else None
    at = f" (at {Path(frame[0]).name}:{frame[1]})" if frame else ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}{': ' + text[0] if text else ''}{at}"


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
    RewardError says what it returned) and can be recorded (`job.encode` or `encode_sample`, into
    a temporary directory). Exceptions on items are allowed (they become NaN); the model failing
    on the trial is a RunError."""
    if hasattr(job, "check"):
        job.check()
    if settings.options.get("return_all"):
        raise ValueError(
            "return_all is not available in batch runs: a run writes num_samples samples, and "
            "return_all returns every particle (num_samples·num_candidates); call svdd.sample instead"
        )
    process, reward, value = job.build()
    count = min(settings.shard_size, settings.num_samples)
    check_arguments(process, reward, value=value, options=settings.options, **settings.sampler_arguments(0, count))
    try:
        res = sample(
            process,
            lambda objs: [0.0] * len(objs),
            method="pretrained",
            num_samples=num,
            num_candidates=1,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
    except (ValueError, TypeError):  # the sampler's own checks of what the process returns
        raise
    except Exception as exc:
        raise RunError(f"a trial run of the model ({num} pretrained samples) failed: {_where(exc)}") from exc
    try:
        evaluate(reward, res.samples)
    except RewardError as exc:
        if exc.__cause__ is None:  # a bad output, not an exception on an item
            raise
    encode = getattr(job, "encode", None) or encode_sample
    with tempfile.TemporaryDirectory() as scratch:
        for i, obj in enumerate(res.samples):
            encode(obj, i, Path(scratch))


def read_record(
    out_dir: Path, settings: RunSettings, log: Callable[[str], None], *, takeover: bool = False
) -> dict | None:
    """The run record already in `out_dir` (None if there is none or it is damaged).

    Raises ValueError when the directory holds a run made with other settings: its run.json
    says so, or, when run.json is damaged, one of its shards does. With `takeover` (a lone
    run), a run.json of other settings whose run never completed and left no shard (it failed
    before its first shard) is replaced rather than refused: there is nothing of it to keep.
    """
    path = out_dir / "run.json"
    record: dict | None = None
    if path.exists() or path.is_symlink():
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or not isinstance(record.get("settings_digest"), str):
                raise ValueError(f"a JSON {type(record).__name__} without settings_digest")
        except (OSError, ValueError) as exc:
            log(
                f"{path} is damaged ({exc.__class__.__name__}: {str(exc)[:80]}); the shards are checked one by "
                "one and run.json is written anew"
            )
            record = None
    if record is not None and record["settings_digest"] != settings.digest():
        recorded = record.get("settings")
        changes = _settings_changes(recorded, settings) if isinstance(recorded, dict) else []
        if not changes:
            log(f"{path} is damaged (its settings_digest does not match its settings); it is written anew")
            record = None
        elif takeover and record.get("status") != "complete" and not _has_shard_files(out_dir):
            log(f"{path} is of a run with other settings that wrote no shard; this run replaces it")
            record = None
        else:
            raise ValueError(
                f"{out_dir} holds a run made with other settings "
                f"({'; '.join(changes)}); "
                "use another output directory to start a new run"
            )
    if record is None:
        for shard in sorted((out_dir / "shards").glob("shard-*.json"))[:64]:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                digest = json.loads(shard.read_text()).get("settings")
                if digest is not None and digest != settings.digest():
                    raise ValueError(
                        f"{out_dir} holds shards of a run made with other settings ({shard.name}); "
                        "use another output directory to start a new run"
                    )
    return record


def _has_shard_files(out_dir: Path) -> bool:
    shards = out_dir / "shards"
    return shards.is_dir() and any(shards.glob("shard-*.json"))


def _settings_json(settings: RunSettings) -> dict:
    return json.loads(json.dumps(asdict(settings), default=str))


def _settings_changes(recorded: dict, settings: RunSettings) -> list[str]:
    """`name: recorded -> ours` for every setting that differs (num_samples aside: a run may grow)."""
    ours = _settings_json(settings)
    names = [k for k in ours if k != "num_samples"] + sorted(k for k in recorded if k not in ours)
    return [f"{k}: {recorded.get(k)!r} -> {ours.get(k)!r}" for k in names if recorded.get(k) != ours.get(k)]


def environment() -> dict[str, Any]:
    """Versions and machine, for the run record."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("svdd", "torch", "numpy", "diffusers", "rdkit", "viennarna", "selfies"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[pkg] = md.version(pkg)
    return {
        "versions": versions,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }


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


def generate(
    job: Job,
    settings: RunSettings,
    out_dir: str | Path,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    poll_s: float = 2.0,
    table_format: str = "csv",
    command: str | None = None,
    cooperate: bool = False,
) -> RunSummary | None:
    """Run (or resume) a sharded generation into `out_dir`.

    Every check (the job's names, the sampler's settings, the reward's output, the table format)
    runs before anything is written. Then writes `shards/`, the sample table `samples.csv` or
    `samples.parquet` (`table_format`; index, sample, reward and the job's extra columns), the
    job's own formats (`job.write`: FASTA, SDF) and `run.json` (settings, seed, the `command`
    that started it, versions, machine, compute counters summed over shards, reward failures,
    wall time). With an `executor`, shards run on it (each worker builds the job once);
    otherwise in this process.

    The directory is locked (`svdd.runs.rundir`): a second run on it is refused, unless both
    `cooperate` (same settings): then they share the shards through claim files, and each
    writes the same outputs when all shards are done. Launched as several processes
    (`accelerate launch`, `torchrun`; see `process_rank`), the ranks cooperate: rank r starts
    with the shards k % world == r, only rank 0 shows progress and writes the outputs, and the
    other ranks return None once their shards are written.
    """
    out_dir = Path(out_dir)
    if not str(out_dir).strip() or str(out_dir) == ".":
        raise ValueError(f"the output directory must be named (e.g. runs/my-run); got {str(out_dir)!r}")
    _check_out_dir(out_dir)
    rank, world = process_rank()
    check_table_format(table_format)
    check_job(job, settings)
    run_dir = RunDirectory(out_dir)
    try:
        run_dir.acquire(shared=cooperate or world > 1)
    except RunWriteError:
        raise
    except OSError as exc:
        where = exc.filename if exc.filename and Path(exc.filename) != out_dir else None
        raise RunWriteError(
            exc.errno or 0,
            f"cannot write to the output directory {out_dir}"
            + (f" ({where})" if where else "")
            + f": {exc.strerror or exc}",
        ) from None
    try:
        return _generate(
            job,
            settings,
            run_dir,
            rank,
            world,
            executor=executor,
            progress=progress,
            log=log,
            poll_s=poll_s,
            table_format=table_format,
            command=command,
        )
    finally:
        run_dir.release()


def _check_out_dir(out_dir: Path) -> None:
    """ValueError when `out_dir` cannot be a run directory: a file, or a link to nowhere."""
    if out_dir.is_symlink() and not out_dir.exists():
        raise ValueError(
            f"the output directory {out_dir} is a symbolic link to {os.readlink(out_dir)}, which does not exist"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"the output directory {out_dir} exists and is not a directory")


def _generate(
    job: Job,
    settings: RunSettings,
    run_dir: RunDirectory,
    rank: int,
    world: int,
    *,
    executor: Executor | None,
    progress: bool,
    log: Callable[[str], None],
    poll_s: float,
    table_format: str,
    command: str | None,
) -> RunSummary | None:
    out_dir = run_dir.root
    with run_dir.finalizing():  # one cooperating worker at a time reads and starts the record
        previous = read_record(out_dir, settings, log, takeover=not run_dir.shared)
        run_dir.clean_leftovers()
        shards = out_dir / "shards"
        if (shards.exists() or shards.is_symlink()) and not shards.is_dir():
            log(f"{shards} is not a directory; it is kept as {set_aside(shards).name} and the shards are redone")
        started = previous.get("started") if previous else None
        record = {
            "command": command,
            "world_size": world,
            "settings": _settings_json(settings),
            "settings_digest": settings.digest(),
            "environment": environment(),
            "started": started if isinstance(started, str) else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
        }
        if rank == 0 and (previous is None or previous.get("status") != "running" or not run_dir.shared):
            write_atomic(out_dir / "run.json", json.dumps(record, indent=2))

    payloads: dict[int, dict] = {}
    todo = []
    present = _shard_files(out_dir)
    for k in range(settings.num_shards):
        if shard_path(out_dir, k).name not in present:  # one listing, not a lookup per shard of a large run
            todo.append(k)
            continue
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
    bar = tqdm(
        total=settings.num_samples,
        initial=done,
        desc="samples",
        unit="sample",
        disable=not progress,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
    )
    in_flight: dict[int, float] = {}  # shard -> fraction of its steps done

    def on_progress(k: int, fraction: float) -> None:
        run_dir.refresh(k)  # its claim stays visibly alive to workers on other hosts
        in_flight[k] = fraction
        bar.n = done + sum(f * settings.shard_range(j)[1] for j, f in in_flight.items())
        bar.refresh()

    rewards_so_far = [r for p in payloads.values() for r in p["rewards"] if r is not None]
    done_here = 0

    def record_shard(payload: dict, mine: bool = True) -> None:
        nonlocal done, done_here
        payloads[payload["shard"]] = payload
        in_flight.pop(payload["shard"], None)
        rewards_so_far.extend(r for r in payload["rewards"] if r is not None)
        done, done_here = done + payload["count"], done_here + int(mine)
        bar.n = done + sum(f * settings.shard_range(j)[1] for j, f in in_flight.items())
        median = f"{np.median(rewards_so_far):.4g}" if rewards_so_far else "nan"
        bar.set_postfix(median_reward=median, refresh=False)
        if not progress and mine:
            log(
                f"shard {payload['shard']} written: {done}/{settings.num_samples} samples, "
                f"median reward {median}, {time.perf_counter() - start_time:.1f}s"
            )

    try:
        for payload in _run_shards(job, settings, run_dir, todo, executor, on_progress):
            record_shard(payload)
        if rank != 0:
            return None
        announced: set[int] = set()  # shards of other workers this one said it waits for
        while len(payloads) < settings.num_shards:  # shards of other workers or ranks
            waiting = [k for k in range(settings.num_shards) if k not in payloads]
            for k in waiting:
                payload, _ = read_shard(out_dir, settings, k)
                if payload is not None:
                    record_shard(payload, mine=False)
            orphans = [
                k for k in range(settings.num_shards) if k not in payloads and not run_dir.claimed_by_live_worker(k)
            ]
            for payload in _run_shards(job, settings, run_dir, orphans, executor, on_progress):  # nobody is on them
                record_shard(payload)
            for k in range(settings.num_shards):
                holder = None if k in payloads or k in announced else run_dir.claim_holder(k)
                if holder is not None:
                    announced.add(k)
                    log(
                        f"waiting for shard {k}, which {holder} is sampling (taken over if that worker dies, "
                        f"or on another host stops touching {run_dir.claim_path(k).name} for {CLAIM_TIMEOUT_S:.0f} s)"
                    )
            if len(payloads) < settings.num_shards:
                time.sleep(poll_s)
    finally:
        bar.close()

    with run_dir.finalizing():
        summary = _write_outputs(job, settings, out_dir, payloads, record, table_format)
    summary.record["wall_time_s_this_invocation"] = time.perf_counter() - start_time
    summary.record["shards_done_this_invocation"] = done_here
    write_atomic(out_dir / "run.json", json.dumps(summary.record, indent=2))
    run_dir.clean_leftovers(finished=True)  # claims a killed cooperating worker left on written shards too
    return summary


def _shard_files(out_dir: Path) -> set[str]:
    """The names in `out_dir/shards` (empty when it is missing or not a directory)."""
    try:
        return set(os.listdir(out_dir / "shards"))
    except OSError:
        return set()


def _write_outputs(
    job: Job, settings: RunSettings, out_dir: Path, payloads: dict[int, dict], record: dict, table_format: str
) -> RunSummary:
    """The sample table, the job's own formats and the completed run record, from every shard."""
    ordered = [payloads[k] for k in range(settings.num_shards)]
    samples = [s for p in ordered for s in p["samples"]]
    rewards = np.array([np.nan if r is None else r for p in ordered for r in p["rewards"]], dtype=np.float64)
    names = list(dict.fromkeys(name for p in ordered for name in p.get("columns", {})))
    columns = {
        name: [v for p in ordered for v in p.get("columns", {}).get(name, [None] * p["count"])] for name in names
    }
    totals: dict[str, float] = {}
    for p in ordered:
        for key, v in p["stats"].items():
            totals[key] = totals.get(key, 0) + v
    failures = int(totals.pop("reward_failures", 0))
    table: dict[str, list] = {
        "index": list(range(len(samples))),
        "sample": [sample_text(x) for x in samples],
        "reward": [None if np.isnan(r) else float(r) for r in rewards],
        **columns,
    }
    files = [write_table(out_dir / f"samples.{table_format}", table, table_format)]
    if hasattr(job, "write"):
        files += write_staged(out_dir, lambda staging: job.write(staging, samples, rewards, columns))
    scored = rewards[~np.isnan(rewards)]  # +inf is a valid (best) reward, NaN an invalid sample
    record = {
        **record,
        "outputs": [str(f.relative_to(out_dir)) for f in files],
        "status": "complete",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stats": totals,
        "reward_failures": failures,
        "invalid_samples": int(rewards.size - scored.size),
        "reward_median": reward_quantile(scored, 0.5) if scored.size else None,
        "reward_p90": reward_quantile(scored, 0.9) if scored.size else None,
    }
    return RunSummary(samples, rewards, record)


def _shard_result(k: int, fn: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """`fn(*args, **kwargs)`, the payload of shard k; the job's code failing is a ShardError naming
    the shard (a failed write stays a RunWriteError: the disk, not the job)."""
    try:
        return fn(*args, **kwargs)
    except RunWriteError:
        raise
    except Exception as exc:
        raise ShardError(f"shard {k} failed: {_where(exc)}") from exc


def _run_shards(
    job: Job,
    settings: RunSettings,
    run_dir: RunDirectory,
    todo: list[int],
    executor: Executor | None,
    on_progress: Callable[[int, float], None],
) -> Iterator[dict]:
    """Sample the shards of `todo` that this process can claim, yielding each one written.

    A shard another worker holds is skipped; one that became valid meanwhile is not redone.
    With an executor, at most as many shards as it has workers are in flight at once, and their
    progress is read from the files they report to. `on_progress(k, fraction)` follows each shard.
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
                    payload = _shard_result(
                        k, run_shard, job, settings, out_dir, k, report=functools.partial(on_progress, k)
                    )
                finally:
                    run_dir.unclaim(k)
                yield payload
        return
    window = max(1, getattr(executor, "_max_workers", 0) or 2)
    pending: dict[Future, int] = {}
    queue = list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < window:
                k = queue.pop(0)
                if take(k):
                    pending[executor.submit(run_shard, job, settings, str(out_dir), k, report_to_file=True)] = k
            if not pending:
                break
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for k in pending.values():
                on_progress(k, read_progress(out_dir, k))
            for future in finished:
                k = pending.pop(future)
                run_dir.unclaim(k)
                yield _shard_result(k, future.result)
    finally:
        for future, k in pending.items():
            future.cancel()
            run_dir.unclaim(k)
