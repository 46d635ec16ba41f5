"""Sampler performance: call overhead, batched vs per-candidate loop, peak memory, throughput.

    OMP_NUM_THREADS=1 python benchmarks/performance.py PART [--quick] [--seed 0] [--out DIR]

PART is one of:

  overhead  SVDD-PM (M=10; images M=8) on every domain (DNA ARS1, RNA -MFE, molecules QED,
            images JPEG). Wall time of `svdd.sample` against the time spent inside the process,
            model, reward and decode calls (every `*_time_s` stat except `wall_time_s`);
            overhead = (wall - inside) / wall, target <= 10%. A domain that misses the target
            (or every domain, with --profile) is profiled with cProfile and its top entries by
            tottime go into the markdown.
  loop      the batched SVDD-PM of `svdd.sample` against a straightforward per-candidate loop
            (the paper code's pattern, `reference_loop` below) with the same per-sample
            generators: fraction of identical final samples and the speed ratio loop/batched
            (N=64, M=10 on DNA and molecules; N=8 on images); the batched sampler is also timed
            with max_batch=128. A control with `OneDrawPerRow` checks that the masked domains'
            differences come from the order in which the generators are consumed.
  memory    peak resident-memory increase of SVDD-PM against M in {1, 2, 4, 8, 16, 32}, with
            max_batch=None and max_batch=64 (molecules N=64, images N=8), each configuration in a
            fresh subprocess (`_memory_child`).
  scaling   throughput (samples/s) of SVDD-PM, M=10, max_batch=2048, against N in
            {8, ..., 256} on DNA and molecules (K=16), plus a DNA series with max_batch=128.
  all       the four parts in turn.

Every part writes benchmarks/results/performance_<part>.{json,md} (and .png for memory and
scaling) recording the exact command, seed, versions, machine, the load average at the start and
the end, and the state of the library checkout; then benchmarks/results/performance.md is
rewritten from whichever part JSONs exist. `--quick` runs tiny settings (a smoke test of well
under a minute for all parts) and writes to a temporary directory unless --out is given, so it
never overwrites the committed results.

All timings are on one CPU thread (`torch.set_num_threads(1)`, OMP_NUM_THREADS=1). The machine
may be shared with other jobs, so every timing also records the process's CPU time and its core
share (CPU / wall), and the load averages are recorded; CPU-time ratios are the steadier measure
when the cores are oversubscribed. Full settings: about 12-15 min on an idle core.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import svdd  # noqa: E402
from benchmarks.provenance import machine_and_versions  # noqa: E402
from svdd import rng  # noqa: E402
from svdd.selection import select  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("overhead", "loop", "memory", "scaling")
DOMAIN_LABELS = {"dna": "DNA ARS1", "rna": "RNA -MFE", "molecules": "molecules QED", "images": "images JPEG"}
OVERHEAD_TARGET = 0.10
LEGACY_TIMERS = ("model_time_s", "reward_time_s", "decode_time_s", "value_time_s")
# Images: final samples whose pixels (in [0, 1]) differ by at most this much followed the same
# path (same winners at every step) and differ only by float rounding; a different winner at any
# step changes the image by far more.
PIXEL_TOLERANCE = 1e-4

# Full and --quick settings. N = num_samples, M = num_candidates, K = denoising steps.
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "overhead": {
            "dna": {"N": 64, "M": 10, "K": 32},
            "rna": {"N": 16, "M": 10, "K": 32},  # ViennaRNA folds 5k candidates: ~20 s at N=16
            "molecules": {"N": 64, "M": 10, "K": 32},
            "images": {"N": 8, "M": 8, "K": 50},
        },
        "loop": {
            "dna": {"N": 64, "M": 10, "K": 32},
            "molecules": {"N": 64, "M": 10, "K": 32},
            "images": {"N": 8, "M": 10, "K": 50},
        },
        # the draw-order-matched control of the loop part (masked domains only; see run_loop)
        "loop_control": {"dna": {"N": 16, "M": 10, "K": 32}, "molecules": {"N": 16, "M": 10, "K": 32}},
        "loop_chunk": 128,  # the batched sampler is also timed with max_batch=128
        "memory": {
            "domains": {"molecules": {"N": 64, "K": 2}, "images": {"N": 8, "K": 3}},
            "M": [1, 2, 4, 8, 16, 32],
            "max_batch": [None, 64],
        },
        "scaling": {"domains": {"dna": {"K": 16}, "molecules": {"K": 16}}, "M": 10, "N": [8, 16, 32, 64, 128, 256],
                    "series": [("dna", 2048), ("molecules", 2048), ("dna", 128)],
                    "call_sizes": [32, 64, 128, 256, 512, 1024, 2048], "call_repeats": 3},
    },
    "quick": {
        "overhead": {
            "dna": {"N": 4, "M": 3, "K": 4},
            "rna": {"N": 2, "M": 2, "K": 4},
            "molecules": {"N": 4, "M": 3, "K": 4},
            "images": {"N": 2, "M": 2, "K": 3},
        },
        "loop": {
            "dna": {"N": 4, "M": 3, "K": 4},
            "molecules": {"N": 4, "M": 3, "K": 4},
            "images": {"N": 2, "M": 3, "K": 3},
        },
        "loop_control": {"dna": {"N": 4, "M": 3, "K": 4}, "molecules": {"N": 4, "M": 3, "K": 4}},
        "loop_chunk": 4,
        "memory": {
            "domains": {"molecules": {"N": 4, "K": 2}},
            "M": [1, 4],
            "max_batch": [None, 4],
        },
        "scaling": {"domains": {"dna": {"K": 2}, "molecules": {"K": 2}}, "M": 3, "N": [4, 8],
                    "series": [("dna", 2048), ("molecules", 2048), ("dna", 4)],
                    "call_sizes": [4, 8], "call_repeats": 1},
    },
}


# -- domains ------------------------------------------------------------------------------------

def load_domain(name: str, steps: int) -> tuple[Any, Any]:
    """(process, reward) of a domain, loaded offline from the committed weights, with K = `steps`."""
    if name in ("dna", "rna"):
        from svdd.domains.sequences import ARS1Activity, RNAFold, load_pretrained
        if name == "dna":
            return load_pretrained("dna-ars1", num_steps=steps), ARS1Activity()
        return load_pretrained("rna-hairpin", num_steps=steps), RNAFold()
    if name == "molecules":
        from svdd.domains.molecules import QED, load_pretrained
        return load_pretrained(num_steps=steps), QED()
    if name == "images":
        from svdd.domains.images import JPEGCompressibility, load_pretrained
        return load_pretrained(num_steps=steps), JPEGCompressibility()
    raise ValueError(f"unknown domain {name!r}; choose one of {', '.join(DOMAIN_LABELS)}")


def per_sample_generators(n: int, seed: int) -> list[torch.Generator]:
    """One generator per sample: sample i draws from `manual_seed(1000 + seed + i)` alone."""
    return [torch.Generator().manual_seed(1000 + seed + i) for i in range(n)]


class Clock:
    """Wall time (perf_counter) and this process's CPU time (process_time) of a block.

    On a shared machine the wall time includes waiting for a core; `share` = cpu / wall is the
    fraction of a core the process actually got (about 1 when the machine is idle).
    """

    def __enter__(self) -> "Clock":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.share = self.cpu / self.wall if self.wall > 0 else float("nan")


def inside_time(stats: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """Seconds spent inside process/model/reward calls: every `*_time_s` stat but `wall_time_s`.

    Works whatever timers the library records (older versions lack transition/denoise/prior).
    """
    parts = {k: float(v) for k, v in stats.items() if k.endswith("_time_s") and k != "wall_time_s"}
    return sum(parts.values()), parts


def warm_up(process: Any, reward: Any) -> None:
    """One tiny SVDD-PM run (N=2, M=2), so one-off costs (lazy imports, first-call allocations
    of the model and the reward's libraries) do not land in the measured run."""
    svdd.sample(process, reward, method="svdd", num_samples=2, num_candidates=2,
                generator=torch.Generator().manual_seed(0), progress=False)


# -- provenance --------------------------------------------------------------------------------

def versions() -> dict[str, Any]:
    """Python, torch, platform, core count, torch threads and the domain libraries' versions."""
    out = machine_and_versions(("torch", "numpy", "diffusers", "rdkit", "selfies", "ViennaRNA", "psutil"))
    out["processor"] = _cpu_model()
    return out


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def checkout() -> dict[str, Any]:
    """The library's git commit and whether svdd/ has uncommitted edits (results depend on them)."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--", "svdd")
    return {"commit": git("rev-parse", "HEAD").strip(), "commit_title": git("log", "-1", "--format=%s").strip(),
            "svdd_uncommitted_changes": [line[3:] for line in dirty.splitlines() if line.strip()]}


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def command_line(argv: list[str]) -> str:
    return "OMP_NUM_THREADS=1 python benchmarks/performance.py " + " ".join(argv)


def save(out: Path, part: str, payload: dict[str, Any], md: str, meta: dict[str, Any]) -> None:
    """Write performance_<part>.json/.md (with provenance) and print the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "loadavg_end": loadavg(), "part_wall_s": round(time.perf_counter() - meta.pop("_start"), 1)}
    payload = {"part": part, **meta, **payload}
    (out / f"performance_{part}.json").write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    header = (f"Command: `{meta['command']}`  \n"
              f"Seed {meta['seed']}; {_machine_line(meta)}; part took {meta['part_wall_s']:.0f} s.\n\n")
    (out / f"performance_{part}.md").write_text(md_title(part) + "\n\n" + header + md)
    print(md_title(part) + "\n\n" + header + md, flush=True)


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def _machine_line(meta: dict[str, Any]) -> str:
    v = meta["versions"]
    commit = meta["checkout"]
    dirty = commit["svdd_uncommitted_changes"]
    return (f"{v['platform']}, {v['processor']}, {v['cpu_count']} cores, {v['torch_threads']} torch thread(s); "
            f"python {v['python']}, torch {v['torch']}; load average (1/5/15 min) {meta['loadavg_start']} at the "
            f"start, {meta['loadavg_end']} at the end; library at {commit['commit'][:10]} "
            f"(\"{commit['commit_title']}\")" + (f" with uncommitted edits to {', '.join(dirty)}" if dirty else ""))


def md_title(part: str) -> str:
    return {
        "overhead": "# Performance: sampler overhead",
        "loop": "# Performance: batched SVDD-PM vs a per-candidate loop",
        "memory": "# Performance: peak memory against M",
        "scaling": "# Performance: throughput against N",
    }[part]


# -- part 1: overhead --------------------------------------------------------------------------

def run_overhead(args: argparse.Namespace, settings: dict[str, Any]) -> tuple[dict, str]:
    """SVDD-PM on every domain: wall time, time inside calls, overhead fraction; cProfile on a miss."""
    rows, profiles = [], {}
    for name, cfg in settings["overhead"].items():
        process, reward = load_domain(name, cfg["K"])
        warm_up(process, reward)
        kw = dict(method="svdd", num_samples=cfg["N"], num_candidates=cfg["M"], progress=False)
        with Clock() as clock:
            res = svdd.sample(process, reward, generator=torch.Generator().manual_seed(args.seed), **kw)
        wall = clock.wall
        inside, parts = inside_time(res.stats)
        overhead = (wall - inside) / wall
        legacy = sum(parts.get(k, 0.0) for k in LEGACY_TIMERS)
        row = {"domain": name, "label": DOMAIN_LABELS[name], **cfg, "wall_s": wall,
               "stats_wall_time_s": float(res.stats["wall_time_s"]), "inside_s": inside, "overhead": overhead,
               "outside_model_reward_decode_value": (wall - legacy) / wall, "cpu_s": clock.cpu,
               "core_share": clock.share,
               "met": overhead <= OVERHEAD_TARGET, "inside_parts_s": parts,
               "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
               "model_batches": int(res.stats["model_batches"]),
               "rows_per_model_call": res.stats["model_calls"] / max(int(res.stats["model_batches"]), 1),
               "reward_median": float(np.nanmedian(res.rewards))}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "inside_parts_s"}), flush=True)
        if args.profile or not row["met"]:
            prof = cProfile.Profile()
            prof.enable()
            svdd.sample(process, reward, generator=torch.Generator().manual_seed(args.seed), **kw)
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
            profiles[name] = _trim_profile(buf.getvalue())
    keys = sorted({k for r in rows for k in r["inside_parts_s"]})
    lines = [
        f"SVDD-PM (posterior-mean value, alpha = 0), one torch.Generator, max_batch left at the library default "
        f"(mean rows per model call: "
        + ", ".join(f"{r['label']} {r.get('rows_per_model_call', float('nan')):.0f}" for r in rows)
        + "), after a tiny warm-up run. "
        f"Inside = the sum of every `*_time_s` stat except `wall_time_s` ({', '.join(keys)}); "
        f"overhead = (wall of `svdd.sample` - inside) / wall; target <= {OVERHEAD_TARGET:.0%}.",
        "",
        f"The last column counts only the model, reward, decode and value timers (the library's timers before "
        f"transitions, priors and PM denoising were timed), i.e. it also counts the sampler's own tensor work "
        f"(transition, denoise, gathering winners) as outside. Core share = CPU time / wall time of the "
        f"process (below 1 when other jobs compete for the cores; the overhead fraction is a ratio of two "
        f"wall times taken in the same run, so it is much less sensitive to that than absolute times).",
        "",
        "| domain | N | M | K | wall (s) | inside (s) | overhead | target | biggest inside parts (s) | "
        "outside model+reward+decode+value | core share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        top = sorted(r["inside_parts_s"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"| {r['label']} | {r['N']} | {r['M']} | {r['K']} | {r['wall_s']:.2f} | {r['inside_s']:.2f} | "
                     f"{r['overhead']:.1%} | {'met' if r['met'] else 'NOT met'} | "
                     + ", ".join(f"{k[:-7]} {v:.2f}" for k, v in top)
                     + f" | {r['outside_model_reward_decode_value']:.1%} | {r['core_share']:.2f} |")
    missed = [r["label"] for r in rows if not r["met"]]
    lines += ["", f"Target (<= {OVERHEAD_TARGET:.0%} on every domain): "
              + ("**met**." if not missed else f"**NOT met** on {', '.join(missed)}.")]
    for name, text in profiles.items():
        lines += ["", f"## cProfile, {DOMAIN_LABELS[name]} (top 25 by tottime)", "", "```", text.rstrip(), "```"]
    return {"target": OVERHEAD_TARGET, "rows": rows, "profiles": profiles}, "\n".join(lines) + "\n"


def _trim_profile(text: str) -> str:
    """pstats output from the column header on, with the long site-packages prefixes shortened."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    out = []
    for line in lines[start:]:
        for prefix in (str(ROOT) + "/", sys.prefix + "/lib/python" + sys.version[:4] + "/site-packages/"):
            line = line.replace(prefix, "")
        out.append(line)
    return "\n".join(out)


# -- part 2: batched vs loop -------------------------------------------------------------------

def reference_loop(process: Any, reward: Any, num_samples: int, num_candidates: int,
                   generator: list[torch.Generator]) -> tuple[list[Any], np.ndarray, torch.Tensor]:
    """SVDD-PM written as the straightforward per-candidate loop (the paper code's pattern).

    Uses only the process protocol (prior, timesteps, model, transition, denoised, decode) and the
    reward. At each step, for j in 0..M-1: draw one child per sample with
    `transition(x, t, out, generator)` (the list of N per-sample generators, so child j of sample
    i is the j-th draw of generator i), evaluate `model(child, t_next)` on the N rows, score
    reward(decode(denoised(...))) (on the last step: reward(decode(child)) of the clean child);
    then stack the M values [N, M] and keep the argmax per sample (`svdd.selection.select` at
    alpha = 0: NaN never wins, ties go to the lowest j, an all-NaN row picks uniformly from its
    own generator, the same rule as the batched sampler), carrying the winner's model output to
    the next step. Returns (samples, rewards float64 [N], final states).
    """
    n, m = num_samples, num_candidates
    ts = list(process.timesteps)
    with torch.no_grad():
        x = process.prior(n, generator)
        out = process.model(x, ts[0])
        samples: list[Any] = []
        rewards = np.full(n, np.nan)
        for k, t in enumerate(ts):
            t_next = ts[k + 1] if k + 1 < len(ts) else None
            children, child_outs, values, objects = [], [], [], []
            for _ in range(m):
                child = process.transition(x, t, out, generator)
                if t_next is None:
                    objs = list(process.decode(child))
                    v = np.asarray(reward(objs), dtype=np.float64)
                    objects.append(objs)
                else:
                    child_out = process.model(child, t_next)
                    v = np.asarray(reward(list(process.decode(process.denoised(child, t_next, child_out)))),
                                   dtype=np.float64)
                    child_outs.append(child_out)
                children.append(child)
                values.append(torch.from_numpy(v))
            table = torch.stack(values, dim=1)  # [N, M]
            pick = select(table, 0.0, generator).index  # [N]
            rows = torch.arange(n)
            x = torch.stack(children, dim=1)[rows, pick.to(x.device)]
            if t_next is None:
                samples = [objects[j][i] for i, j in enumerate(pick.tolist())]
                rewards = table[rows, pick].numpy()
            else:
                out = torch.stack(child_outs, dim=1)[rows, pick.to(x.device)]
    return samples, rewards, x


class OneDrawPerRow:
    """A masked-diffusion process whose `transition` makes ONE per-row random draw, not two.

    `svdd.masked.MaskedDiffusion.transition` draws the keep-masked uniforms for all rows, then the
    token uniforms for all rows. With per-sample generators, the batched sampler's M children of
    sample i then consume generator i as keep_0..keep_{M-1}, token_0..token_{M-1}, while a loop
    over j consumes it as keep_0, token_0, keep_1, token_1, ...: the same distribution, but not the
    same numbers. This wrapper draws both uniforms of a row at once (rand [B, 2, L]), so child j
    is the j-th draw of generator i in both designs. Used only for the loop part's control; the
    reverse-step arithmetic is that of MaskedDiffusion.transition.
    """

    def __init__(self, base: Any):
        self.base = base
        self.timesteps = base.timesteps

    def prior(self, n: int, generator: Any = None) -> torch.Tensor:
        return self.base.prior(n, generator)

    def model(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        return self.base.model(x, t)

    def transition(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: Any = None) -> torch.Tensor:
        b = self.base
        s = b.next_time(t)
        u = rng.rand((x.shape[0], 2, *x.shape[1:]), generator, device=x.device)
        u_keep, u_token = u[:, 0], u[:, 1]
        probs = torch.softmax(out.to(torch.float64), dim=-1)
        cdf = probs.cumsum(dim=-1)
        tokens = (cdf < u_token.unsqueeze(-1) * cdf[..., -1:]).sum(dim=-1).clamp_max(b.vocab_size - 1)
        unmask = (x == b.mask_index) & (u_keep >= s / t)
        return torch.where(unmask, tokens, x)

    def denoised(self, x: torch.Tensor, t: Any, out: torch.Tensor) -> torch.Tensor:
        return self.base.denoised(x, t, out)

    def decode(self, x0: torch.Tensor) -> list[Any]:
        return self.base.decode(x0)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return bool(torch.equal(a, b))
    return a == b


def compare_designs(process: Any, reward: Any, n: int, m: int, seed: int,
                    chunk: int | None = None) -> dict[str, Any]:
    """Batched `svdd.sample` vs `reference_loop` with fresh per-sample generators of the same seeds.

    With `chunk`, also times the batched sampler with max_batch=chunk (candidates handled in groups
    of about `chunk` rows) and checks that its samples equal those of max_batch=None.
    """
    load = {"start": loadavg()}
    with Clock() as cb:
        res = svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=m,
                          generator=per_sample_generators(n, seed), max_batch=None, progress=False)
    with Clock() as cl:
        loop_samples, loop_rewards, _ = reference_loop(process, reward, n, m, per_sample_generators(n, seed))
    load["after_loop"] = loadavg()
    same = [_same(a, b) for a, b in zip(res.samples, loop_samples)]
    row: dict[str, Any] = {
        "N": n, "M": m, "K": len(process.timesteps), "batched_s": cb.wall, "loop_s": cl.wall,
        "speed_ratio": cl.wall / cb.wall, "batched_cpu_s": cb.cpu, "loop_cpu_s": cl.cpu,
        "cpu_speed_ratio": cl.cpu / cb.cpu, "core_share": min(cb.share, cl.share),
        "identical": sum(same), "identical_fraction": sum(same) / n,
        "batched_reward_median": float(np.nanmedian(res.rewards)),
        "loop_reward_median": float(np.nanmedian(loop_rewards)),
        "rewards_equal_where_identical": bool(np.array_equal(np.asarray(res.rewards)[same], loop_rewards[same],
                                                             equal_nan=True)),
    }
    if isinstance(res.samples[0], torch.Tensor):
        diffs = [float((a - b).abs().max()) for a, b in zip(res.samples, loop_samples)]
        row["max_abs_pixel_diff"] = max(diffs)
        close = sum(d <= PIXEL_TOLERANCE for d in diffs)
        row["same_up_to_float_noise"], row["same_up_to_float_noise_fraction"] = close, close / n
    else:
        row["same_up_to_float_noise"], row["same_up_to_float_noise_fraction"] = sum(same), sum(same) / n
    if chunk is not None:
        with Clock() as cc:
            chunked = svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=m,
                                  generator=per_sample_generators(n, seed), max_batch=chunk, progress=False)
        row["chunk"] = chunk
        row["chunked_s"], row["chunked_cpu_s"] = cc.wall, cc.cpu
        row["chunked_ratio"], row["chunked_cpu_ratio"] = cc.wall / cb.wall, cc.cpu / cb.cpu
        row["core_share"] = min(row["core_share"], cc.share)
        row["chunked_identical_fraction"] = sum(_same(a, b) for a, b in zip(res.samples, chunked.samples)) / n
        if isinstance(res.samples[0], torch.Tensor):
            diffs = [float((a - b).abs().max()) for a, b in zip(res.samples, chunked.samples)]
            row["chunked_max_abs_pixel_diff"] = max(diffs)
            row["chunked_same_path_fraction"] = sum(d <= PIXEL_TOLERANCE for d in diffs) / n
        load["end"] = loadavg()
    row["loadavg"] = load
    return row


def _first_divergence(process: Any, reward: Any, n: int, m: int, seed: int) -> dict[str, Any]:
    """How much the UNet's output depends on the batch size (images: float batch effects).

    The first step's model output on the N prior states, evaluated as N rows (as the loop's
    first call does) and repeated as N·M rows (the size of the batched children's calls).
    """
    gens = per_sample_generators(n, seed)
    with torch.no_grad():
        x = process.prior(n, gens)
        t = process.timesteps[0]
        out = process.model(x, t)
        big = process.model(x.repeat_interleave(m, dim=0), t).view(n, m, *out.shape[1:])
    return {"first_step_model_max_abs_diff_batch_N_vs_NM": float((big - out.unsqueeze(1)).abs().max())}


def run_loop(args: argparse.Namespace, settings: dict[str, Any]) -> tuple[dict, str]:
    """Batched vs loop on DNA, molecules and images; plus the draw-order-matched control."""
    rows, controls = [], []
    for name, cfg in settings["loop"].items():
        process, reward = load_domain(name, cfg["K"])
        warm_up(process, reward)
        row = {"domain": name, "label": DOMAIN_LABELS[name],
               **compare_designs(process, reward, cfg["N"], cfg["M"], args.seed, settings["loop_chunk"])}
        if name == "images":
            row.update(_first_divergence(process, reward, cfg["N"], cfg["M"], args.seed))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if name in settings["loop_control"]:
            c = settings["loop_control"][name]
            ctl = load_domain(name, c["K"])[0]
            crow = {"domain": name, "label": DOMAIN_LABELS[name],
                    **compare_designs(OneDrawPerRow(ctl), reward, c["N"], c["M"], args.seed)}
            controls.append(crow)
            print(json.dumps({"control": crow}), flush=True)
    return loop_report(rows, controls, settings["loop_chunk"])


def loop_report(rows: list[dict], controls: list[dict], chunk: int) -> tuple[dict, str]:
    """The payload and markdown of the loop part from its rows."""
    lines = [
        "SVDD-PM (alpha = 0), max_batch=None. *Batched* = `svdd.sample` (all N·M children of a step in one "
        "transition, one model call, one decode and one reward call); *loop* = `reference_loop` in "
        "benchmarks/performance.py, the paper code's pattern (for each of the M candidates: one transition on "
        "the N parents, a model call on N rows, denoise, decode, reward; then argmax per sample). Both use one "
        "generator per sample, `torch.Generator().manual_seed(1000 + i)`, fresh for each design.",
        "",
        "",
        f"*Identical* = bitwise equal final samples; *same path* = identical, or for images within "
        f"{PIXEL_TOLERANCE:g} in every pixel (the same winner at every step, differing only by float rounding).",
        "",
        "Times are wall (CPU) seconds; the ratios are given for both, CPU time being the steadier measure when "
        "other jobs compete for the cores (min core share = the lowest CPU/wall of the runs of that row).",
        "",
        "| domain | N | M | K | batched (s) | loop (s) | loop / batched, wall (CPU) | identical samples | same path "
        "| min core share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['N']} | {r['M']} | {r['K']} | {r['batched_s']:.2f} ({r['batched_cpu_s']:.2f}) "
                     f"| {r['loop_s']:.2f} ({r['loop_cpu_s']:.2f}) | {r['speed_ratio']:.2f}x ({r['cpu_speed_ratio']:.2f}x) | "
                     f"{r['identical']}/{r['N']} ({r['identical_fraction']:.0%}) | "
                     f"{r['same_up_to_float_noise']}/{r['N']} ({r['same_up_to_float_noise_fraction']:.0%}) | "
                     f"{r['core_share']:.2f} |")
    lines += [
        "",
        f"The batched sampler again with max_batch={chunk} (candidates made, scored and selected for groups of "
        f"max(1, {chunk} // M) samples, so model calls of at most ~{chunk} rows instead of N·M), same generators:",
        "",
        f"| domain | batched, max_batch=None (s) | batched, max_batch={chunk} (s) | ratio, wall (CPU) "
        "| samples identical to max_batch=None |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        extra = (f"; same path {r['chunked_same_path_fraction']:.0%} (max pixel diff "
                 f"{r['chunked_max_abs_pixel_diff']:.2g})") if "chunked_max_abs_pixel_diff" in r else ""
        lines.append(f"| {r['label']} | {r['batched_s']:.2f} ({r['batched_cpu_s']:.2f}) | {r['chunked_s']:.2f} "
                     f"({r['chunked_cpu_s']:.2f}) | {r['chunked_ratio']:.2f}x ({r['chunked_cpu_ratio']:.2f}x) | "
                     f"{r['chunked_identical_fraction']:.0%}{extra} |")
    lines += ["", "Load average (1 min) at the start of each domain's timings: "
              + ", ".join(f"{r['label']} {r['loadavg']['start'][0] if r['loadavg']['start'] else '?'}" for r in rows)
              + " (2 cores; other jobs share the machine, so single timings carry noise)."]
    if controls:
        lines += [
            "",
            "Control: the same comparison on the masked domains with `OneDrawPerRow`, the masked process with "
            "both uniforms of a transition drawn in one per-row draw (same distribution), so that child j of "
            "sample i is the j-th draw of generator i in both designs:",
            "",
            "| domain | N | M | K | batched (s) | loop (s) | loop / batched, wall (CPU) | identical samples |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in controls:
            lines.append(f"| {r['label']} | {r['N']} | {r['M']} | {r['K']} | {r['batched_s']:.2f} ({r['batched_cpu_s']:.2f}) "
                         f"| {r['loop_s']:.2f} ({r['loop_cpu_s']:.2f}) | {r['speed_ratio']:.2f}x ({r['cpu_speed_ratio']:.2f}x) "
                         f"| {r['identical']}/{r['N']} ({r['identical_fraction']:.0%}) |")
    lines += ["", "## Why samples differ", ""] + _loop_explanation(rows, controls)
    lines += ["", "## Speed", ""] + _speed_explanation(rows)
    return {"rows": rows, "controls": controls, "chunk": chunk}, "\n".join(lines) + "\n"


def _speed_explanation(rows: list[dict]) -> list[str]:
    """What the loop/batched ratios say, from the CPU-time ratios (the steadier measure)."""
    out = []
    for r in rows:
        loop, chunked = r["cpu_speed_ratio"], r.get("chunked_cpu_ratio")
        text = f"- {r['label']} (N={r['N']}, M={r['M']}): loop / batched = {loop:.2f}x in CPU time"
        if loop < 1:
            text += (f": the loop is FASTER. Its model calls have N={r['N']} rows; the batched sampler's have "
                     f"N·M={r['N'] * r['M']}, and on this CPU the denoiser costs more per row in such large calls "
                     "(likely because a large call's activations no longer fit in the CPU caches; see the model ms/row "
                     "in performance_scaling.md).")
        elif loop < 1.1:
            text += ": about the same; the work per row dominates and batching saves only per-call costs."
        else:
            text += ": batching pays (fewer, larger calls amortise per-call costs of the model and the scheduler)."
        if chunked is not None:
            text += (f" The batched sampler with max_batch={r['chunk']} takes {chunked:.2f}x the CPU time of "
                     f"max_batch=None" + (", i.e. capping the call size recovers the loss." if chunked < 0.95 and loop < 1
                                          else "."))
        out.append(text)
    return out


def _loop_explanation(rows: list[dict], controls: list[dict]) -> list[str]:
    out = []
    masked = [r for r in rows if r["domain"] in ("dna", "molecules")]
    if any(r["identical_fraction"] < 1 for r in masked):
        ctl = ", ".join(f"{r['label']} {r['identical']}/{r['N']}" for r in controls)
        out.append(
            "- Masked domains (DNA, molecules): `MaskedDiffusion.transition` makes two draws per row (the "
            "keep-masked uniforms for the whole batch, then the token uniforms). In the batched design sample "
            "i's M children are consecutive rows drawing from generator i, which yields keep_0..keep_{M-1} and "
            "then token_0..token_{M-1}; the loop takes keep_j, token_j for child j. Same distribution, different "
            "numbers, so the loop's samples are an independent draw rather than a copy: the identical fraction "
            f"above measures this, not a bug. The control removes only this ordering difference: {ctl} identical."
        )
    for r in rows:
        if r["domain"] != "images" or r["identical_fraction"] == 1:
            continue
        n, same = r["N"], r["same_up_to_float_noise"]
        text = (f"- Images: the DDPM step draws one noise tensor per row, so the random numbers match, but the UNet "
                f"gives slightly different floats for a batch of N·M rows than for N rows (first step: max abs "
                f"difference {r['first_step_model_max_abs_diff_batch_N_vs_NM']:.2e}), so the final images are not "
                f"bitwise equal. {same}/{n} followed the same path (every pixel within {PIXEL_TOLERANCE:g}).")
        if same < n:
            text += (f" The other {n - same} diverged: JPEG sizes are whole bytes, so children often tie, and a "
                     "rounding difference that moves one quantized pixel can change a size and hence the winner; "
                     f"from there the runs differ (largest pixel difference {r['max_abs_pixel_diff']:.3g}).")
        out.append(text)
    for r in controls:
        if r["identical_fraction"] < 1:
            out.append(
                f"- Control, {r['label']}: {r['N'] - r['identical']} of {r['N']} samples still differ: the "
                "denoiser's logits for a batch of N·M rows differ in the last bits from those for N rows, which "
                "can move a token draw across a CDF boundary or flip an argmax in x0_hat, and the runs diverge "
                "from there."
            )
    if not out:
        out.append("- All samples are identical.")
    return out


# -- part 3: memory ----------------------------------------------------------------------------

def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_child(argv: list[str]) -> None:
    """Subprocess entry: `_memory_child DOMAIN N M MAX_BATCH K SEED` -> one JSON line on stdout.

    Loads the model and reward, does a tiny warm-up run, records VmRSS as the baseline, resets
    the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`) and runs SVDD-PM; the peak
    is VmHWM afterwards. (getrusage's ru_maxrss is not used after the reset: it also keeps the
    high-water mark of exited threads, so it can still report the peak of model loading.) If the
    reset is not allowed, a psutil thread polls RSS every 2 ms instead.
    """
    domain, n, m, max_batch, steps, seed = argv
    n, m, steps, seed = int(n), int(m), int(steps), int(seed)
    mb = None if max_batch == "None" else int(max_batch)
    torch.set_num_threads(1)
    process, reward = load_domain(domain, steps)
    svdd.sample(process, reward, method="svdd", num_samples=1, num_candidates=1,
                generator=torch.Generator().manual_seed(0), progress=False)
    baseline_kb = _status_kb("VmRSS")
    poller = None
    try:
        Path("/proc/self/clear_refs").write_text("5")
        how = "clear_refs + VmHWM"
    except OSError:
        import threading

        import psutil

        how = "psutil polling (2 ms)"
        peak = [0]
        stop = threading.Event()
        me = psutil.Process()

        def poll() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], me.memory_info().rss // 1024)
                time.sleep(0.002)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
    start = time.perf_counter()
    res = svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=m, max_batch=mb,
                      generator=torch.Generator().manual_seed(seed), progress=False)
    wall = time.perf_counter() - start
    if poller is not None:
        stop.set()
        poller.join()
        peak_kb = peak[0]
    else:
        peak_kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"domain": domain, "N": n, "M": m, "max_batch": mb, "K": steps, "baseline_mb": baseline_kb / 1024,
                      "peak_mb": peak_kb / 1024, "increase_mb": (peak_kb - baseline_kb) / 1024, "wall_s": wall,
                      "model_batches": int(res.stats["model_batches"]), "how": how}), flush=True)


def run_memory(args: argparse.Namespace, settings: dict[str, Any]) -> tuple[dict, str]:
    """Peak-RSS increase of SVDD-PM against M, each (domain, M, max_batch) in a fresh subprocess."""
    cfg = settings["memory"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for name, d in cfg["domains"].items():
        for mb in cfg["max_batch"]:
            for m in cfg["M"]:
                cmd = [sys.executable, str(Path(__file__).resolve()), "_memory_child", name, str(d["N"]), str(m),
                       str(mb), str(d["K"]), str(args.seed)]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
                if proc.returncode != 0:
                    raise RuntimeError(f"memory child {' '.join(cmd[2:])} failed:\n{proc.stderr[-3000:]}")
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                row["label"] = DOMAIN_LABELS[name]
                rows.append(row)
                print(json.dumps(row), flush=True)
    plot_memory(rows, cfg, args.out / "performance_memory.png")
    return memory_report(rows, cfg)


def memory_report(rows: list[dict], cfg: dict[str, Any]) -> tuple[dict, str]:
    """Growth ratios and the markdown of the memory part from its rows.

    Two ratios per (domain, max_batch): M_high vs M_low (the headline), and M_high vs M_fit, the
    largest M whose N·M candidates still fit in one batch of max_batch rows: below M_fit the knob
    does not act (all candidates are one batch either way), so only growth beyond M_fit says
    whether max_batch bounds memory. "Bounded" = at most 2x beyond M_fit.
    """
    growth = []
    for name, d in cfg["domains"].items():
        for mb in cfg["max_batch"]:
            sel = {r["M"]: r for r in rows if r["domain"] == name and r["max_batch"] == mb}
            lo, hi = sel[min(sel)], sel[max(sel)]
            fits = [m for m in sel if mb is not None and d["N"] * m <= mb]
            fit = sel[max(fits)] if fits else lo
            growth.append({"domain": name, "label": DOMAIN_LABELS[name], "max_batch": mb, "N": d["N"],
                           "M_low": lo["M"], "M_high": hi["M"], "M_fit": fit["M"],
                           "increase_low_mb": lo["increase_mb"], "increase_high_mb": hi["increase_mb"],
                           "increase_fit_mb": fit["increase_mb"],
                           "ratio": hi["increase_mb"] / max(lo["increase_mb"], 1e-9),
                           "ratio_vs_fit": hi["increase_mb"] / max(fit["increase_mb"], 1e-9),
                           "peak_ratio": hi["peak_mb"] / lo["peak_mb"],
                           "bounded": None if mb is None else hi["increase_mb"] <= 2 * fit["increase_mb"]})
    ms = cfg["M"]
    lines = [
        "SVDD-PM (alpha = 0), one torch.Generator, each configuration in a fresh subprocess. Increase = peak "
        "resident memory during `svdd.sample` minus the resident memory just before it (after loading the model "
        "and reward and a warm-up run with N=1, M=1); the peak counter is reset right before the call "
        f"(`/proc/self/clear_refs`, then VmHWM). Settings: "
        + "; ".join(f"{DOMAIN_LABELS[k]} N={v['N']}, K={v['K']}" for k, v in cfg["domains"].items())
        + " (K only repeats the same per-step work; K = 2 already has one PM step on N·M children and the "
        "clean last step). Small values (tens of MB) carry allocator noise of about +-10 MB.",
        "",
        "Peak increase (MB):",
        "",
        "| domain | max_batch | " + " | ".join(f"M={m}" for m in ms) + " |",
        "|---|---|" + "---|" * len(ms),
    ]
    for name in cfg["domains"]:
        for mb in cfg["max_batch"]:
            sel = {r["M"]: r for r in rows if r["domain"] == name and r["max_batch"] == mb}
            lines.append(f"| {DOMAIN_LABELS[name]} | {mb} | " + " | ".join(f"{sel[m]['increase_mb']:.1f}" for m in ms)
                         + " |")
    lines += ["", f"Growth of the increase, M={max(ms)} vs M={min(ms)}, and M={max(ms)} vs M_fit (the largest M with "
              "N·M <= max_batch: up to there all candidates are one batch with or without the knob). Bounded = the "
              "increase at most doubles beyond M_fit.", "",
              f"| domain | max_batch | M={max(ms)} vs M={min(ms)} | M_fit | M={max(ms)} vs M_fit | peak RSS ratio "
              "| bounded by max_batch? |", "|---|---|---|---|---|---|---|"]
    for g in growth:
        verdict = "" if g["bounded"] is None else ("yes" if g["bounded"] else "NO")
        fit = "" if g["max_batch"] is None else f"{g['M_fit']}"
        vs_fit = "" if g["max_batch"] is None else f"{g['ratio_vs_fit']:.2f}x"
        lines.append(f"| {g['label']} | {g['max_batch']} | {g['ratio']:.2f}x ({g['increase_low_mb']:.1f} -> "
                     f"{g['increase_high_mb']:.1f} MB) | {fit} | {vs_fit} | {g['peak_ratio']:.2f}x | {verdict} |")
    lines += ["", "Wall time of each run (s): "
              + "; ".join(f"{r['label']} mb={r['max_batch']} M={r['M']}: {r['wall_s']:.1f}" for r in rows), "",
              "![peak memory vs M](performance_memory.png)"]
    return {"rows": rows, "growth": growth, "settings": cfg}, "\n".join(lines) + "\n"


def plot_memory(rows: list[dict], cfg: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name in cfg["domains"]:
        for mb in cfg["max_batch"]:
            sel = sorted((r for r in rows if r["domain"] == name and r["max_batch"] == mb), key=lambda r: r["M"])
            ax.plot([r["M"] for r in sel], [r["increase_mb"] for r in sel], marker="o",
                    linestyle="-" if mb is None else "--", label=f"{DOMAIN_LABELS[name]}, max_batch={mb}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(cfg["M"], [str(m) for m in cfg["M"]])
    ax.set_xlabel("M (candidates per sample)")
    ax.set_ylabel("peak RSS increase during svdd.sample (MB)")
    ax.set_title("SVDD-PM peak memory vs M")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- part 4: scaling ---------------------------------------------------------------------------

def run_scaling(args: argparse.Namespace, settings: dict[str, Any]) -> tuple[dict, str]:
    """Samples/s of SVDD-PM (M=10) against N, per (domain, max_batch) series.

    The main series use max_batch=2048; an extra DNA series with max_batch=128 shows what the
    size of the model calls does to throughput on a CPU.
    """
    cfg = settings["scaling"]
    rows = []
    for name in dict.fromkeys(name for name, _ in cfg["series"]):
        process, reward = load_domain(name, cfg["domains"][name]["K"])
        warm_up(process, reward)
        # the series of one domain are interleaved (each N runs every max_batch back to back), so a
        # change in machine load between series does not masquerade as a max_batch effect
        for n, mb in ((n, mb) for n in cfg["N"] for dom, mb in cfg["series"] if dom == name):
            with Clock() as clock:
                res = svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=cfg["M"],
                                  max_batch=mb, generator=torch.Generator().manual_seed(args.seed), progress=False)
            inside, parts = inside_time(res.stats)
            row = {"domain": name, "label": DOMAIN_LABELS[name], "max_batch": mb, "N": n, "M": cfg["M"],
                   "K": cfg["domains"][name]["K"], "wall_s": clock.wall, "cpu_s": clock.cpu,
                   "core_share": clock.share, "samples_per_s": n / clock.wall, "samples_per_cpu_s": n / clock.cpu,
                   "model_s": parts.get("model_time_s", 0.0), "reward_s": parts.get("reward_time_s", 0.0),
                   "inside_s": inside, "model_calls": int(res.stats["model_calls"]),
                   "model_batches": int(res.stats["model_batches"]),
                   "model_ms_per_row": 1000 * parts.get("model_time_s", 0.0) / max(int(res.stats["model_calls"]), 1),
                   "loadavg": loadavg()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    sweep = []
    for name in dict.fromkeys(name for name, _ in cfg["series"]):
        process, _ = load_domain(name, cfg["domains"][name]["K"])
        for entry in call_size_sweep(process, cfg["call_sizes"], cfg["call_repeats"]):
            sweep.append({"domain": name, "label": DOMAIN_LABELS[name], **entry})
            print(json.dumps(sweep[-1]), flush=True)
    payload, md = scaling_report(rows, sweep, cfg)
    plot_scaling(rows, sweep, cfg, args.out / "performance_scaling.png")
    return payload, md


def call_size_sweep(process: Any, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """Cost per row of one `process.model` call against the call's size.

    Calls on the prior states (all-mask sequences; noise for images) at the middle timestep; the
    sizes are interleaved within each repeat, and the minimum over repeats is kept (wall and CPU
    time separately), which filters out the time lost to other jobs on a shared machine.
    """
    t = process.timesteps[len(process.timesteps) // 2]
    x = process.prior(max(sizes), torch.Generator().manual_seed(0))
    best: dict[int, list[float]] = {b: [float("inf"), float("inf")] for b in sizes}
    with torch.no_grad():
        process.model(x[: min(sizes)], t)
        for _ in range(repeats):
            for b in sizes:
                with Clock() as clock:
                    process.model(x[:b], t)
                best[b][0] = min(best[b][0], clock.wall / b)
                best[b][1] = min(best[b][1], clock.cpu / b)
    return [{"rows": b, "wall_ms_per_row": 1000 * best[b][0], "cpu_ms_per_row": 1000 * best[b][1]} for b in sizes]


def scaling_report(rows: list[dict], sweep: list[dict], cfg: dict[str, Any]) -> tuple[dict, str]:
    """The payload and markdown of the scaling part."""
    ns = cfg["N"]
    lines = [
        f"SVDD-PM (alpha = 0), M = {cfg['M']}, one torch.Generator, after a warm-up run; K = "
        + ", ".join(f"{DOMAIN_LABELS[k]} {v['K']}" for k, v in cfg["domains"].items())
        + " denoising steps (time per sample is about proportional to K: K = 32 gives about half these rates). "
        "Samples/s = N / wall time of `svdd.sample`; per CPU-s = N / CPU time of the process (the steadier "
        "measure when other jobs compete for the cores; core share = CPU / wall). Model ms/row = model time / "
        "model rows: the cost of one denoiser row at the call sizes that N·M and max_batch give (one call has "
        "min(N·M, about max_batch) rows). The series of a domain are interleaved: at each N every max_batch "
        "runs back to back.",
        "",
        "| series | " + " | ".join(f"N={n}" for n in ns) + " |",
        "|---|" + "---|" * len(ns),
    ]
    for name, mb in cfg["series"]:
        sel = {r["N"]: r for r in rows if r["domain"] == name and r["max_batch"] == mb}
        tag = f"{DOMAIN_LABELS[name]}, max_batch={mb}"
        lines.append(f"| {tag}: samples/s | " + " | ".join(f"{sel[n]['samples_per_s']:.2f}" for n in ns) + " |")
        lines.append(f"| {tag}: samples per CPU-s | " + " | ".join(f"{sel[n]['samples_per_cpu_s']:.2f}" for n in ns)
                     + " |")
        lines.append(f"| {tag}: model ms/row (wall) | " + " | ".join(f"{sel[n]['model_ms_per_row']:.2f}" for n in ns)
                     + " |")
        lines.append(f"| {tag}: core share | " + " | ".join(f"{sel[n]['core_share']:.2f}" for n in ns) + " |")
    sizes = cfg["call_sizes"]
    lines += ["", f"Cost of one denoiser row against the size of the model call (min over {cfg['call_repeats']} "
              "interleaved repeats, CPU ms per row; the minimum filters out time lost to other jobs). "
              "SVDD-PM's model calls have min(N·M, about max_batch) rows:", "",
              "| domain | " + " | ".join(f"{b} rows" for b in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for name in dict.fromkeys(r["domain"] for r in sweep):
        sel = {r["rows"]: r for r in sweep if r["domain"] == name}
        lines.append(f"| {DOMAIN_LABELS[name]} | " + " | ".join(f"{sel[b]['cpu_ms_per_row']:.3f}" for b in sizes) + " |")
    lines += ["", "## Findings", ""] + _scaling_findings(rows, sweep, cfg)
    lines += ["", "![throughput vs N](performance_scaling.png)"]
    return {"rows": rows, "call_sizes": sweep, "settings": cfg}, "\n".join(lines) + "\n"


def _scaling_findings(rows: list[dict], sweep: list[dict], cfg: dict[str, Any]) -> list[str]:
    """Data-driven notes: the per-row cost of big calls, and what a smaller max_batch buys."""
    out = []
    for name in dict.fromkeys(r["domain"] for r in sweep):
        sel = {r["rows"]: r["cpu_ms_per_row"] for r in sweep if r["domain"] == name}
        small = min(v for b, v in sel.items() if b <= 256)
        big = max(sel)
        out.append(f"- {DOMAIN_LABELS[name]}: one denoiser row costs {small:.2f} CPU ms in calls of <= 256 rows and "
                   f"{sel[big]:.2f} ms in a call of {big} rows ({sel[big] / small:.1f}x). With max_batch=2048 a call "
                   f"holds N·M rows (up to 2048), so throughput falls once N·M passes a few hundred rows instead of "
                   "rising with N.")
    series = [mb for dom, mb in cfg["series"] if dom == "dna"]
    if len(series) == 2:
        big_mb, small_mb = sorted(series, reverse=True)
        ratios = []
        for n in cfg["N"]:
            a = [r for r in rows if r["domain"] == "dna" and r["N"] == n and r["max_batch"] == small_mb]
            b = [r for r in rows if r["domain"] == "dna" and r["N"] == n and r["max_batch"] == big_mb]
            if a and b and n * cfg["M"] > small_mb:
                ratios.append((n, a[0]["samples_per_cpu_s"] / b[0]["samples_per_cpu_s"]))
        if ratios:
            out.append(f"- DNA ARS1 with max_batch={small_mb} vs {big_mb}, same N (interleaved runs): "
                       + ", ".join(f"N={n} {r:.2f}x" for n, r in ratios)
                       + " the samples per CPU-second. max_batch caps the rows of the denoiser calls and, through "
                       "the candidate groups, of the reward calls too (the ARS1 oracle is also a CNN): on a CPU it is "
                       "the throughput knob.")
    out.append("- At N = 8 and 16 the rates are also lowered by fixed costs per run, among them the first model "
               "call at each new batch shape, which we measured at 2-3x the CPU time of a repeat call of that "
               "shape (presumably kernel set-up per shape; a process that samples repeatedly pays it once per "
               "shape).")
    out.append("- Wall-time rates carry the machine's load (core share above); compare series through the CPU "
               "rates, and the absolute numbers only with runs at a similar core share.")
    return out


def plot_scaling(rows: list[dict], sweep: list[dict], cfg: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    for ax, key, ylabel in ((axes[0], "samples_per_s", "samples / s (wall, one thread)"),
                            (axes[1], "samples_per_cpu_s", "samples per CPU-second")):
        for name, mb in cfg["series"]:
            sel = sorted((r for r in rows if r["domain"] == name and r["max_batch"] == mb), key=lambda r: r["N"])
            ax.plot([r["N"] for r in sel], [r[key] for r in sel], marker="o", linestyle="-" if mb == 2048 else "--",
                    label=f"{DOMAIN_LABELS[name]} (K={cfg['domains'][name]['K']}), max_batch={mb}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(cfg["N"], [str(n) for n in cfg["N"]])
        ax.set_xlabel("N (samples per call)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[2]
    for name in dict.fromkeys(r["domain"] for r in sweep):
        sel = sorted((r for r in sweep if r["domain"] == name), key=lambda r: r["rows"])
        ax.plot([r["rows"] for r in sel], [r["cpu_ms_per_row"] for r in sel], marker="o", label=DOMAIN_LABELS[name])
    ax.set_xscale("log", base=2)
    ax.set_xticks(cfg["call_sizes"], [str(b) for b in cfg["call_sizes"]])
    ax.set_xlabel("rows per model call")
    ax.set_ylabel("CPU ms per row (min over repeats)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"SVDD-PM throughput, M={cfg['M']} (left, middle) and denoiser cost per row vs call size (right)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the combined summary ----------------------------------------------------------------------

def write_summary(out: Path) -> None:
    """performance.md: a short table per part from whichever performance_<part>.json exist."""
    data = {p: json.loads((out / f"performance_{p}.json").read_text())
            for p in PARTS if (out / f"performance_{p}.json").exists()}
    if not data:
        return
    total = sum(d["part_wall_s"] for d in data.values())
    lines = ["# Sampler performance (summary)", "",
             "Regenerate: `OMP_NUM_THREADS=1 python benchmarks/performance.py all` (one part: `... performance.py "
             "overhead|loop|memory|scaling`; smoke test, written to a temporary directory: `... all --quick`). "
             f"These parts took {total / 60:.0f} min of wall time in all on a shared 2-core machine where this job got "
             "0.3-0.6 of a core; on an idle core the full settings take about 12-15 min. Details, provenance "
             "and load averages in performance_<part>.md / .json.", ""]
    lines += ["## Key points", ""] + _key_points(data) + [""]
    if "overhead" in data:
        d = data["overhead"]
        lines += ["## Overhead (target <= 10% of wall time outside process/model/reward calls)", "",
                  "| domain | N | M | K | wall (s) | overhead | target |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['N']} | {r['M']} | {r['K']} | {r['wall_s']:.1f} | {r['overhead']:.1%} | "
                  f"{'met' if r['met'] else 'NOT met'} |" for r in d["rows"]]
        lines += ["", _provenance(d), ""]
    if "loop" in data:
        d = data["loop"]
        lines += ["## Batched vs per-candidate loop", "",
                  "| domain | N | M | K | batched CPU (s) | loop CPU (s) | loop / batched, CPU (wall) | "
                  "batched max_batch=128 / None, CPU | identical | same path |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['label']}{' (control, one draw per row)' if c else ''} | {r['N']} | {r['M']} | {r['K']} | "
                  f"{r['batched_cpu_s']:.1f} | {r['loop_cpu_s']:.1f} | {r['cpu_speed_ratio']:.2f}x ({r['speed_ratio']:.2f}x) | "
                  + (f"{r['chunked_cpu_ratio']:.2f}x" if "chunked_cpu_ratio" in r else "") + " | "
                  f"{r['identical_fraction']:.0%} | {r['same_up_to_float_noise_fraction']:.0%} |"
                  for c, group in ((False, d["rows"]), (True, d["controls"])) for r in group]
        lines += ["", "Masked domains: the batched sampler and the loop consume each sample's generator in a different "
                  "order (two draws per transition), so their samples are independent draws; the control with one "
                  "draw per row gives identical samples. Images: same path, differing only by float rounding. "
                  "Details: performance_loop.md.", "", _provenance(d), ""]
    if "memory" in data:
        d = data["memory"]
        lines += ["## Peak memory against M (peak RSS increase during `svdd.sample`)", "",
                  "| domain | N | max_batch | low M (MB) | high M (MB) | ratio | ratio beyond M_fit | bounded? |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {g['label']} | {g['N']} | {g['max_batch']} | {g['increase_low_mb']:.1f} (M={g['M_low']}) | "
                  f"{g['increase_high_mb']:.1f} (M={g['M_high']}) | {g['ratio']:.2f}x | "
                  + ("" if g["max_batch"] is None else f"{g['ratio_vs_fit']:.2f}x (M_fit={g['M_fit']})") + " | "
                  + ("" if g["bounded"] is None else ("yes" if g["bounded"] else "NO")) + " |" for g in d["growth"]]
        lines += ["", "M_fit = the largest M with N·M <= max_batch (below it the knob does not act)."]
        lines += ["", "![peak memory vs M](performance_memory.png)", "", _provenance(d), ""]
    if "scaling" in data:
        d = data["scaling"]
        ns = d["settings"]["N"]
        lines += [f"## Throughput against N (M={d['settings']['M']}; samples per CPU-second, wall samples/s in "
                  "performance_scaling.md)", "",
                  "| series (samples per CPU-s) | K | " + " | ".join(f"N={n}" for n in ns) + " |",
                  "|---|---|" + "---|" * len(ns)]
        for name, mb in d["settings"]["series"]:
            sel = {r["N"]: r for r in d["rows"] if r["domain"] == name and r["max_batch"] == mb}
            lines.append(f"| {DOMAIN_LABELS[name]}, max_batch={mb} | {d['settings']['domains'][name]['K']} | "
                         + " | ".join(f"{sel[n]['samples_per_cpu_s']:.2f}" for n in ns) + " |")
        lines += ["", "CPU time rather than wall time because other jobs shared the 2 cores (core share "
                  f"{min(r['core_share'] for r in d['rows']):.2f}-{max(r['core_share'] for r in d['rows']):.2f}); "
                  "wall samples/s and per-row model cost: performance_scaling.md.", "",
                  "![throughput vs N](performance_scaling.png)", "", _provenance(d), ""]
    (out / "performance.md").write_text("\n".join(lines))


def _key_points(data: dict[str, dict]) -> list[str]:
    """A few data-driven headline sentences for the summary."""
    out = []
    if "overhead" in data:
        rows = data["overhead"]["rows"]
        worst = max(rows, key=lambda r: r["overhead"])
        out.append(f"- Overhead outside process/model/reward calls is at most {worst['overhead']:.1%} ({worst['label']}); "
                   f"the 10% target is {'met on every domain' if all(r['met'] for r in rows) else 'NOT met'}.")
    if "loop" in data:
        rows = data["loop"]["rows"]
        slow = [r for r in rows if r["cpu_speed_ratio"] < 1]
        if slow:
            out.append("- With max_batch=None the batched sampler is SLOWER than the per-candidate loop on "
                       + ", ".join(f"{r['label']} ({r['cpu_speed_ratio']:.2f}x)" for r in slow)
                       + ": on a CPU a model call of N·M rows costs more per row than one of N rows. Capping the "
                       "call size (max_batch=128) cuts the batched CPU time to "
                       + ", ".join(f"{r['chunked_cpu_ratio']:.2f}x" for r in slow) + " of that.")
        fast = [r for r in rows if r["cpu_speed_ratio"] >= 1]
        if fast:
            out.append("- The loop is slower than the batched sampler on "
                       + ", ".join(f"{r['label']} ({r['cpu_speed_ratio']:.2f}x)" for r in fast) + ".")
    if "memory" in data:
        g = data["memory"]["growth"]
        out.append("- Peak memory from M=1 to M=32 grows "
                   + ", ".join(f"{x['ratio']:.1f}x ({x['label']})" for x in g if x["max_batch"] is None)
                   + " without max_batch; with max_batch=64 it grows "
                   + ", ".join(f"{x['ratio_vs_fit']:.2f}x beyond M_fit ({x['label']})" for x in g
                               if x["max_batch"] is not None) + ": bounded by the knob.")
    if "scaling" in data:
        sweep = data["scaling"].get("call_sizes", [])
        for name in dict.fromkeys(r["domain"] for r in sweep):
            sel = {r["rows"]: r["cpu_ms_per_row"] for r in sweep if r["domain"] == name}
            small = min(v for b, v in sel.items() if b <= 256)
            out.append(f"- {DOMAIN_LABELS[name]}: a denoiser row costs {sel[max(sel)] / small:.1f}x more in a "
                       f"{max(sel)}-row call than in calls of <= 256 rows, so throughput with max_batch=2048 drops "
                       "at large N.")
    return out


def _provenance(d: dict[str, Any]) -> str:
    c = d["checkout"]
    return (f"<sub>`{d['command']}`; load average {d['loadavg_start']} -> {d['loadavg_end']}; library at "
            f"{c['commit'][:10]}" + (" + uncommitted svdd/ edits" if c["svdd_uncommitted_changes"] else "")
            + f"; {d['part_wall_s']:.0f} s.</sub>")


# -- entry point -------------------------------------------------------------------------------

RUNNERS = {"overhead": run_overhead, "loop": run_loop, "memory": run_memory, "scaling": run_scaling}


def main(argv: list[str] | None = None) -> None:
    """`performance.py PART [--quick] [--seed S] [--out DIR] [--profile] [--threads T]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_memory_child":
        memory_child(argv[1:])
        return
    ap = argparse.ArgumentParser(prog="benchmarks/performance.py", description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=[*PARTS, "all"])
    ap.add_argument("--quick", action="store_true", help="tiny settings (smoke test, < 1 min for all parts)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--profile", action="store_true", help="overhead: profile every domain, not only misses")
    ap.add_argument("--out", type=Path, default=None,
                    help="results directory (default benchmarks/results; with --quick a temporary directory)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "svdd-performance-quick" if args.quick else RESULTS
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    settings = SETTINGS["quick" if args.quick else "full"]
    for part in PARTS if args.part == "all" else (args.part,):
        meta = {"_start": time.perf_counter(), "command": command_line(argv), "seed": args.seed,
                "quick": args.quick, "versions": versions(), "checkout": checkout(), "loadavg_start": loadavg()}
        payload, md = RUNNERS[part](args, settings)
        save(args.out, part, payload, md, meta)
        write_summary(args.out)
    print(f"results in {args.out}", flush=True)


if __name__ == "__main__":
    main()
