"""How noisy is Vina at low exhaustiveness? Dock a few molecules against PARP1 at exhaustiveness
1, 4 and 8 with several seeds; write benchmarks/results/molecules_docking_noise.{csv,json}.

    python -m benchmarks molecules_docking_noise
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .report import RESULTS, command_line, machine_and_versions, write_csv, write_json

OLAPARIB = "O=C(c1cc(Cc2n[nH]c(=O)c3ccccc23)ccc1F)N1CCN(C(=O)C2CC2)CC1"
SETTINGS = [(1, 0), (1, 1), (1, 2), (4, 0), (8, 0), (8, 1)]  # (exhaustiveness, seed)


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from svdd.domains.molecules import sample_smiles, vina_score

    argv = list(argv or [])
    ap = argparse.ArgumentParser(prog="python -m benchmarks molecules_docking_noise", description=__doc__)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    mols = [("olaparib", OLAPARIB)] + [(f"moses_test_sample[{i}]", s) for i, s in enumerate(sample_smiles()[:4])]
    rows = []
    for name, smi in mols:
        for ex, seed in SETTINGS:
            t = time.perf_counter()
            score = vina_score(smi, "PARP1", exhaustiveness=ex, seed=seed)
            rows.append({"molecule": name, "smiles": smi, "exhaustiveness": ex, "seed": seed,
                         "vina_kcal_mol": score, "seconds": time.perf_counter() - t})
            print(rows[-1], flush=True)
    write_csv(args.out / "molecules_docking_noise.csv", rows)
    summary = pd.DataFrame(rows).groupby(["molecule", "exhaustiveness"])["vina_kcal_mol"].agg(
        ["mean", "min", "max", "count"])
    write_json(args.out / "molecules_docking_noise.json", {
        "command": command_line("molecules_docking_noise", argv),
        "target": "PARP1 (dockstring 0.3.4 receptor + box)", "vina": "1.2.7 python API, cpu=1",
        "versions": machine_and_versions(("vina", "rdkit")),
        "summary": {f"{m} ex={e}": v for (m, e), v in summary.to_dict("index").items()},
    })
    print(summary)
