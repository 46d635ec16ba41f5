"""How noisy is Vina at low exhaustiveness? Dock a few molecules against PARP1 at exhaustiveness
1, 4 and 8 with several seeds; write benchmarks/results/molecules_docking_noise.{csv,json}.

    OMP_NUM_THREADS=1 python benchmarks/molecules_docking_noise.py
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from svdd.domains.molecules.data import sample_smiles  # noqa: E402
from svdd.domains.molecules.docking import vina_score  # noqa: E402

OLAPARIB = "O=C(c1cc(Cc2n[nH]c(=O)c3ccccc23)ccc1F)N1CCN(C(=O)C2CC2)CC1"
SETTINGS = [(1, 0), (1, 1), (1, 2), (4, 0), (8, 0), (8, 1)]


def main() -> None:
    mols = [("olaparib", OLAPARIB)] + [(f"moses_test_sample[{i}]", s) for i, s in enumerate(sample_smiles()[:4])]
    rows = []
    for name, smi in mols:
        for ex, seed in SETTINGS:
            t = time.perf_counter()
            score = vina_score(smi, "PARP1", exhaustiveness=ex, seed=seed)
            rows.append({"molecule": name, "smiles": smi, "exhaustiveness": ex, "seed": seed,
                         "vina_kcal_mol": score, "seconds": time.perf_counter() - t})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    out = Path(__file__).resolve().parent / "results"
    df.to_csv(out / "molecules_docking_noise.csv", index=False)
    summary = df.groupby(["molecule", "exhaustiveness"])["vina_kcal_mol"].agg(["mean", "min", "max", "count"])
    (out / "molecules_docking_noise.json").write_text(json.dumps({
        "command": "OMP_NUM_THREADS=1 python benchmarks/molecules_docking_noise.py",
        "target": "PARP1 (dockstring 0.3.4 receptor + box)", "vina": "1.2.7 python API, cpu=1",
        "machine": platform.platform(), "python": platform.python_version(),
        "summary": {f"{m} ex={e}": v for (m, e), v in summary.to_dict("index").items()},
    }, indent=1))
    print(summary)


if __name__ == "__main__":
    main()
