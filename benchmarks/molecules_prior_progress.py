"""How the v2 molecule prior improves with training: FCD and the MOSES metrics of its EMA snapshots
against training time, next to the old model, so the rest of the training can be planned (#22).

Reads the eval JSONs `benchmarks/molecules_prior_eval.py` wrote (one per snapshot) and the
training log, and writes `benchmarks/results/molecules_prior_progress.{md,png}`:

    OMP_NUM_THREADS=1 python -m benchmarks.molecules_prior_progress \\
        /work/ckpt/moses-v2/snapshots/*.eval2000.json --log /work/ckpt/moses-v2/log.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("validity", "uniqueness", "novelty", "mean_QED", "mean_SA", "diversity", "FCD_vs_test")


def rows(evals: list[Path]) -> list[dict]:
    """One row per eval JSON, by training step: step, hours of training, samples and the metrics."""
    out = []
    for path in evals:
        record = json.loads(path.read_text())
        model, metrics = record.get("model", {}), record.get("metrics", {})
        out.append(
            {
                "step": model.get("step"),
                "hours": (model.get("wall_s") or 0.0) / 3600,
                "n": record.get("num_samples"),
                **{k: metrics.get(k) for k in COLUMNS},
                "val_nelbo": model.get("val_nelbo_per_token_ema"),
            }
        )
    return sorted(out, key=lambda r: r["step"] or 0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("evals", nargs="+", type=Path, help="eval JSONs of molecules_prior_eval.py")
    ap.add_argument("--log", type=Path, default=None, help="the training log.jsonl (validation NELBO curve)")
    ap.add_argument("--out", type=Path, default=RESULTS / "molecules_prior_progress")
    args = ap.parse_args(argv)
    table = rows(args.evals)
    lines = [
        "# Molecule prior v2: quality against training time",
        "",
        f"Command: `OMP_NUM_THREADS=1 python -m benchmarks.molecules_prior_progress {' '.join(map(str, args.evals))}"
        + (f" --log {args.log}`" if args.log else "`"),
        "",
        "Targets (#22, on 10,000 samples): validity 1.0, uniqueness >= 0.99, novelty >= 0.9, FCD <= 2.0 "
        "(at least <= 5), mean SA within 0.3 and mean QED within 0.05 of MOSES (2.45, 0.807). Old model "
        "(1,000 samples): QED 0.577, SA 4.27, FCD 19.7 (`molecules_pretrained.md`). Training: 1 CPU thread, "
        "batch 128.",
        "",
        "| step | training hours | samples | " + " | ".join(COLUMNS) + " | val NELBO/token (EMA) |",
        "|" + "---|" * (len(COLUMNS) + 4),
    ]
    for r in table:
        cells = [f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in COLUMNS]
        nelbo = f"{r['val_nelbo']:.4f}" if isinstance(r["val_nelbo"], float) else "-"
        lines.append(f"| {r['step']} | {r['hours']:.2f} | {r['n']} | " + " | ".join(cells) + f" | {nelbo} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot([r["hours"] for r in table], [r["FCD_vs_test"] for r in table], "o-", label="v2 snapshots")
    axes[0].axhline(19.66, color="grey", ls="--", label="old model")
    axes[0].axhline(2.0, color="green", ls=":", label="goal")
    axes[0].set(xlabel="training hours (1 CPU thread)", ylabel="FCD vs MOSES test", yscale="log")
    axes[0].legend(fontsize=8)
    if args.log is not None and args.log.exists():
        log = [json.loads(line) for line in args.log.read_text().splitlines() if line.strip()]
        val = [(r["wall_s"] / 3600, r["val_nelbo_per_token_ema"]) for r in log if "val_nelbo_per_token_ema" in r]
        if val:
            axes[1].plot(*zip(*val), ".-", label="v2 (EMA)")
    axes[1].axhline(0.604, color="grey", ls="--", label="old model, final")
    axes[1].set(xlabel="training hours", ylabel="val NELBO / token (EMA)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=110)
    print(f"wrote {args.out.with_suffix('.md')} and .png")


if __name__ == "__main__":
    main()
