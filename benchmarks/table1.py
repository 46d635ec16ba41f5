"""The paper's Table 1 on our models: every domain/reward against every method.

Rows (task: model, reward):
  images_jpeg       Fashion-MNIST DDPM (50 steps), JPEGCompressibility (-kB at quality 95)
  images_shirt      Fashion-MNIST DDPM (50 steps), log p(shirt | x) under the shipped CNN
  molecules_qed     SELFIES masked diffusion on MOSES (32 steps), QED
  molecules_sa      same model, SA reported as (10 - SA)/9
  molecules_docking same model, -Vina score against PARP1 (kcal/mol, exhaustiveness 1); small N
  dna_ars1          DNA masked diffusion (32 steps), ARS1 activity oracle (standardised enrichment)
  rna_mfe           RNA hairpin masked diffusion (32 steps), -MFE (kcal/mol, ViennaRNA)

Columns (methods, one seed):
  pretrained  ancestral sampling
  best_of_n   N·M pretrained samples, the top N kept (about the model calls of SVDD-PM)
  dps         gradient guidance; only where a differentiable surrogate exists (the classifier):
              JPEG size and every discrete domain have none (n/a)
  smc         N·M particles, PM value (docking: the MC value net), weights exp(Δv/α)
  svdd_mc     SVDD with the shipped MC value network
  svdd_pm     SVDD with the posterior-mean value (α = 0), the paper's main method
              (docking: selection only every `select_every` steps, the sparse schedule)
  svdd_r      SVDD-PM plus resampling of the worst fraction each step

Cells: median and 90th percentile of the reward with 95% percentile-bootstrap intervals,
diversity (images: 1 - cosine of classifier embeddings, standing in for the paper's CLIP;
sequences: pairwise one-hot distance; molecules: 1 - Tanimoto on Morgan fingerprints) and
naturalness (images: DDPM variational bound on -log p in bits/dim, lower = more natural;
sequences and molecules: ELBO in nats, higher = more natural; molecules also validity and
uniqueness). Every cell is stored in benchmarks/results/table1/<task>/<method>.json with its
settings and per-sample rewards and reused by later runs with the same settings (--force redoes).

    OMP_NUM_THREADS=1 python benchmarks/table1.py                       # every row (hours on 2 cores)
    OMP_NUM_THREADS=1 python benchmarks/table1.py --rows dna_ars1,rna_mfe
    python benchmarks/table1.py --quick                                  # tiny settings, a few minutes
    python benchmarks/table1.py --render --update-readme                 # assemble the table only
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import svdd  # noqa: E402
from benchmarks.provenance import machine_and_versions  # noqa: E402
from benchmarks.metrics import cosine_distance, median_p90, one_hot_distance, uniqueness  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("pretrained", "best_of_n", "dps", "smc", "svdd_mc", "svdd_pm", "svdd_r")
ROWS = ("images_jpeg", "images_shirt", "molecules_qed", "molecules_sa", "molecules_docking", "dna_ars1", "rna_mfe")
LABELS = {"pretrained": "Pretrained", "best_of_n": "Best-of-N", "dps": "DPS", "smc": "SMC",
          "svdd_mc": "SVDD-MC", "svdd_pm": "SVDD-PM", "svdd_r": "SVDD-R"}


@dataclass
class Task:
    """One row: how to build its process and reward, and how to describe its samples."""

    name: str
    reward_label: str
    num_samples: int
    num_candidates: int
    num_steps: int
    smc_alpha: float
    build: Callable[["Task"], None]
    resample_fraction: float = 0.05
    max_batch: int = 2048
    options: dict[str, dict] = field(default_factory=dict)  # per-method extra options
    not_applicable: dict[str, str] = field(default_factory=dict)
    note: str = ""
    # filled by build():
    process: Any = None
    reward: Any = None
    mc_value: Any = None
    dps_reward: Any = None
    dps_scale: float = 1.0
    diversity: Callable[[Any], float] | None = None
    naturalness: Callable[[Any], dict] | None = None
    close: Callable[[], None] | None = None


# --------------------------------------------------------------------------- domains


def _images(task: Task, reward_name: str) -> None:
    from svdd.domains.images import ClassifierReward, JPEGCompressibility, load_classifier, load_pipeline, load_pretrained, load_value
    from svdd.domains.images.likelihood import negative_elbo
    from svdd.domains.images.rewards import to_classifier_input

    pipe = load_pipeline()
    task.process = load_pretrained(num_steps=task.num_steps, pipeline=pipe)
    clf = load_classifier()
    embed = torch.nn.Sequential(clf.features, *list(clf.head)[:-1]).eval()  # 128-d penultimate layer
    if reward_name == "jpeg":
        task.reward = JPEGCompressibility()
        task.mc_value = load_value("jpeg")
    else:
        task.reward = ClassifierReward(reward_name)
        task.mc_value = load_value(reward_name)
        index = task.reward.class_index

        def log_p(x0: torch.Tensor) -> torch.Tensor:  # x0_hat [n, 1, 32, 32] in [-1, 1]
            return torch.log_softmax(clf(x0.clamp(-1.0, 1.0)), dim=-1)[:, index]

        task.dps_reward = svdd.rewards.TorchReward(log_p, name=f"log_p({reward_name}) surrogate")

    def diversity(res) -> float:
        with torch.no_grad():
            feats = embed(torch.stack([to_classifier_input(img) for img in res.samples]))
        return cosine_distance(feats)

    def naturalness(res) -> dict:
        nll = negative_elbo(pipe, res.states.clamp(-1, 1), num_times=16, seed=0).numpy()
        return {"neg_elbo_bits_per_dim": float(nll.mean())}

    task.diversity, task.naturalness = diversity, naturalness


def _masked_naturalness(process, res) -> dict:
    from svdd.masked_training import elbo

    return {"elbo_nats": float(elbo(process, res.states.long(), num_times=16, seed=0).numpy().mean())}


def _molecules(task: Task, reward_name: str) -> None:
    from svdd.domains.molecules import QED, SA, Docking, canonical, load_pretrained, load_value, \
        mean_pairwise_tanimoto_distance

    task.process = load_pretrained(num_steps=task.num_steps)
    if reward_name == "docking":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(int(os.environ.get("DOCKING_WORKERS", "2")), mp_context=mp.get_context("spawn"))
        task.reward = Docking("PARP1", exhaustiveness=1, timeout_s=60, executor=pool)
        task.mc_value = load_value("moses-selfies-docking")
        task.close = lambda: pool.shutdown()
    else:
        task.reward = {"qed": QED, "sa": SA}[reward_name]()
        task.mc_value = load_value(f"moses-selfies-{reward_name}")
    task.diversity = lambda res: mean_pairwise_tanimoto_distance(res.samples)

    def naturalness(res) -> dict:
        canon = [canonical(s) for s in res.samples]
        valid = [c for c in canon if c]
        return {"validity": len(valid) / len(canon), "uniqueness": uniqueness(valid),
                **_masked_naturalness(task.process, res)}

    task.naturalness = naturalness


def _sequences(task: Task, model: str, value: str, reward_cls: Callable) -> None:
    from svdd.domains.sequences import load_pretrained, load_value

    task.process = load_pretrained(model, num_steps=task.num_steps)
    task.reward = reward_cls()
    task.mc_value = load_value(value)
    task.diversity = lambda res: one_hot_distance(res.states.long())
    task.naturalness = lambda res: {**_masked_naturalness(task.process, res), "uniqueness": uniqueness(res.samples)}


def make_task(name: str, quick: bool) -> Task:
    """The settings of row `name` (full or --quick)."""
    from svdd.domains.sequences import ARS1Activity, RNAFold

    discrete = "the states are discrete (no gradient to follow)"
    no_surrogate = "JPEG size has no differentiable surrogate here"
    specs = {
        "images_jpeg": dict(reward_label="JPEG compressibility (-kB)", num_samples=32, num_candidates=8,
                            num_steps=50, smc_alpha=0.02, max_batch=256, build=lambda t: _images(t, "jpeg"),
                            not_applicable={"dps": no_surrogate}),
        "images_shirt": dict(reward_label="classifier log p(shirt)", num_samples=32, num_candidates=8, num_steps=50,
                             smc_alpha=1.0, max_batch=256, build=lambda t: _images(t, "shirt")),
        "molecules_qed": dict(reward_label="QED", num_samples=128, num_candidates=10, num_steps=32, smc_alpha=0.02,
                              build=lambda t: _molecules(t, "qed"), not_applicable={"dps": discrete}),
        "molecules_sa": dict(reward_label="SA ((10-SA)/9)", num_samples=128, num_candidates=10, num_steps=32,
                             smc_alpha=0.02, build=lambda t: _molecules(t, "sa"), not_applicable={"dps": discrete}),
        "molecules_docking": dict(reward_label="PARP1 docking (-Vina kcal/mol)", num_samples=16, num_candidates=4,
                                  num_steps=32, smc_alpha=0.2, resample_fraction=0.0625,
                                  build=lambda t: _molecules(t, "docking"), not_applicable={"dps": discrete},
                                  options={"svdd_pm": {"select_steps": 16}, "svdd_r": {"select_steps": 16}},
                                  note="SMC weights by the docking value network (PM would dock N·M states per "
                                       "step); Vina exhaustiveness 1, 60 s timeout per ligand (a timeout is NaN)"),
        "dna_ars1": dict(reward_label="ARS1 activity (standardised)", num_samples=128, num_candidates=10,
                         num_steps=32, smc_alpha=0.1, not_applicable={"dps": discrete},
                         build=lambda t: _sequences(t, "dna-ars1", "dna-ars1-activity", ARS1Activity)),
        "rna_mfe": dict(reward_label="RNA -MFE (kcal/mol)", num_samples=128, num_candidates=10, num_steps=32,
                        smc_alpha=1.0, not_applicable={"dps": discrete},
                        build=lambda t: _sequences(t, "rna-hairpin", "rna-hairpin-mfe", RNAFold)),
    }
    if name not in specs:
        raise SystemExit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
    spec = specs[name]
    if quick:
        spec.update(num_samples=8 if name != "molecules_docking" else 4, num_candidates=2,
                    num_steps=10 if name.startswith("images") else 8, resample_fraction=0.25)
        if "options" in spec:
            spec["options"] = {k: {"select_steps": 4} for k in spec["options"]}
    return Task(name=name, **spec)


# --------------------------------------------------------------------------- running cells


def settings(task: Task, method: str, seed: int) -> dict:
    return {"task": task.name, "method": method, "num_samples": task.num_samples,
            "num_candidates": task.num_candidates, "num_steps": task.num_steps, "seed": seed,
            "smc_alpha": task.smc_alpha if method == "smc" else None,
            "resample_fraction": task.resample_fraction if method == "svdd_r" else None,
            "options": task.options.get(method, {}), "max_batch": task.max_batch}


def run_cell(task: Task, method: str, seed: int) -> dict:
    """Sample with `method` on `task` and summarise: reward quantiles with CIs, diversity, naturalness."""
    kw = dict(num_samples=task.num_samples, num_candidates=task.num_candidates, max_batch=task.max_batch,
              generator=torch.Generator().manual_seed(seed), progress=True, **task.options.get(method, {}))
    if method in ("pretrained", "best_of_n", "svdd_pm"):
        res = svdd.sample(task.process, task.reward, method="svdd" if method == "svdd_pm" else method, **kw)
    elif method == "svdd_mc":
        res = svdd.sample(task.process, task.reward, method="svdd", value=task.mc_value, **kw)
    elif method == "svdd_r":
        res = svdd.sample(task.process, task.reward, method="svdd_r", resample_fraction=task.resample_fraction, **kw)
    elif method == "smc":
        value = task.mc_value if task.name == "molecules_docking" else None
        res = svdd.sample(task.process, task.reward, method="smc", alpha=task.smc_alpha, value=value, **kw)
    elif method == "dps":
        res = svdd.sample(task.process, task.dps_reward, method="dps", guidance_scale=task.dps_scale, **kw)
        res.rewards = np.asarray(svdd.rewards.evaluate(task.reward, res.samples), dtype=np.float64)
    else:
        raise ValueError(method)
    start = time.perf_counter()
    summary = {**median_p90(res.rewards, seed=seed), "diversity": task.diversity(res), **task.naturalness(res),
               "model_calls": int(res.stats["model_calls"]), "reward_calls": int(res.stats["reward_calls"]),
               "value_calls": int(res.stats["value_calls"]), "wall_time_s": float(res.stats["wall_time_s"]),
               "metrics_time_s": time.perf_counter() - start}
    return {"settings": settings(task, method, seed), "summary": summary,
            "rewards": [None if not math.isfinite(r) else float(r) for r in res.rewards],
            "samples": [s if isinstance(s, str) else None for s in res.samples]}


def cell_path(out: Path, task: str, method: str) -> Path:
    return out / "table1" / task / f"{method}.json"


def environment() -> dict:
    out = machine_and_versions(("torch", "diffusers", "rdkit", "selfies", "vina", "ViennaRNA", "numpy"))
    out["loadavg"] = os.getloadavg()
    return out


def run_rows(rows: list[str], methods: list[str], out: Path, seed: int, quick: bool, force: bool) -> None:
    for name in rows:
        task = make_task(name, quick)
        todo = []
        for method in methods:
            path = cell_path(out, name, method)
            if method in task.not_applicable:
                continue
            if path.exists() and not force:
                stored = json.loads(path.read_text())
                if stored.get("settings") == settings(task, method, seed):
                    print(f"{name}/{method}: kept {path}", flush=True)
                    continue
            todo.append(method)
        if not todo:
            continue
        task.build(task)
        try:
            for method in todo:
                print(f"{name}/{method} ...", flush=True)
                cell = run_cell(task, method, seed)
                cell["command"] = command()
                cell["environment"] = environment()
                path = cell_path(out, name, method)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(cell, indent=1))
                tmp.replace(path)
                s = cell["summary"]
                print(f"{name}/{method}: median {s['median']:.4g} p90 {s['p90']:.4g} diversity {s['diversity']:.3f} "
                      f"calls {s['model_calls']} time {s['wall_time_s']:.0f}s", flush=True)
        finally:
            if task.close:
                task.close()


def command() -> str:
    return "OMP_NUM_THREADS=1 python benchmarks/table1.py " + " ".join(sys.argv[1:])


# --------------------------------------------------------------------------- the table


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "nan"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.1f}"


def naturalness_text(s: dict) -> str:
    parts = []
    if "validity" in s:
        parts.append(f"valid {s['validity']:.2f}, uniq {s['uniqueness']:.2f}")
    if "elbo_nats" in s:
        parts.append(f"ELBO {s['elbo_nats']:.1f}")
    if "neg_elbo_bits_per_dim" in s:
        parts.append(f"-ELBO {s['neg_elbo_bits_per_dim']:.3f} b/d")
    if "uniqueness" in s and "validity" not in s:
        parts.append(f"uniq {s['uniqueness']:.2f}")
    return "; ".join(parts)


def render(out: Path, rows: list[str], quick: bool) -> tuple[str, list[dict]]:
    """Markdown of Table 1 (one block per task) and the flat records for CSV/JSON."""
    lines, records = [], []
    for name in rows:
        task = make_task(name, quick)
        extras = "".join(f"; {LABELS[m]} {', '.join(f'{k} = {v}' for k, v in o.items())}"
                         for m, o in task.options.items())
        dps = "" if "dps" in task.not_applicable else f"; DPS guidance scale {task.dps_scale}"
        lines += [f"**{name}**: {task.reward_label}; N = {task.num_samples}, M = {task.num_candidates}, "
                  f"K = {task.num_steps}; SMC α = {task.smc_alpha}; SVDD-R resamples {task.resample_fraction:g} "
                  f"of the batch per step{dps}{extras}" + (f". {task.note}" if task.note else ""), "",
                  "| method | median [95% CI] | 90th pct [95% CI] | diversity | naturalness | model calls |",
                  "|---|---|---|---|---|---|"]
        for method in METHODS:
            path = cell_path(out, name, method)
            if method in task.not_applicable:
                lines.append(f"| {LABELS[method]} | n/a: {task.not_applicable[method]} | | | | |")
                continue
            if not path.exists():
                lines.append(f"| {LABELS[method]} | not run | | | | |")
                continue
            cell = json.loads(path.read_text())
            s = cell["summary"]
            records.append({"task": name, "method": method, **cell["settings"], **{
                k: v for k, v in s.items() if not isinstance(v, list)},
                "median_ci_low": s["median_ci"][0], "median_ci_high": s["median_ci"][1],
                "p90_ci_low": s["p90_ci"][0], "p90_ci_high": s["p90_ci"][1], "command": cell["command"]})
            lines.append(f"| {LABELS[method]} | {_fmt(s['median'])} [{_fmt(s['median_ci'][0])}, "
                         f"{_fmt(s['median_ci'][1])}] | {_fmt(s['p90'])} [{_fmt(s['p90_ci'][0])}, "
                         f"{_fmt(s['p90_ci'][1])}] | {s['diversity']:.3f} | {naturalness_text(s)} | "
                         f"{s['model_calls']} |")
        lines.append("")
    return "\n".join(lines), records


def write_table(out: Path, rows: list[str], quick: bool, update_readme: bool) -> None:
    md, records = render(out, rows, quick)
    header = ("# Table 1 on our models\n\nOne seed (0) per cell; intervals are 95% percentile bootstraps over "
              "the N samples. Higher reward is better. Diversity: images 1 - cosine of classifier embeddings, "
              "sequences one-hot pairwise distance, molecules 1 - Tanimoto (Morgan r=2). Naturalness: images "
              "-ELBO under the DDPM in bits/dim (lower = more natural); sequences and molecules ELBO in nats "
              "(higher = more natural). DPS's guidance scale (1.0) was the best median reward on seed 1 among "
              "{0.03, 0.1, 0.3, 1.0} (seed 1 medians -2.53, -0.128, -0.0186, -0.0063). Commands per cell are in "
              "table1.json.\n\n")
    (out / "table1.md").write_text(header + md)
    (out / "table1.json").write_text(json.dumps({"rows": records, "environment": environment()}, indent=1))
    if records:
        keys = list(dict.fromkeys(k for r in records for k in r))
        with open(out / "table1.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(records)
    if update_readme:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text()
        start, end = "<!-- table1:start -->", "<!-- table1:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"benchmarks/README.md has no {start} ... {end} block to update")
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        readme.write_text(before + start + "\n" + md + end + after)
    print(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny settings; results under benchmarks/results/quick/")
    ap.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    ap.add_argument("--render", action="store_true", help="only assemble the table from stored cells")
    ap.add_argument("--update-readme", action="store_true", help="write the table into benchmarks/README.md")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results[/quick])")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for r in args.rows.split(",") if r]
    methods = [m for m in args.methods.split(",") if m]
    for bad in [r for r in rows if r not in ROWS] + [m for m in methods if m not in METHODS]:
        raise SystemExit(f"unknown row or method {bad!r}; rows: {', '.join(ROWS)}; methods: {', '.join(METHODS)}")
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    if not args.render:
        run_rows(rows, methods, out, args.seed, args.quick, args.force)
    write_table(out, [r for r in ROWS if r in rows], args.quick, args.update_readme and not args.quick)


if __name__ == "__main__":
    main()
