"""Ship a value network trained by `svdd train-value molecules ...` as a weights file of this package.

The shipped docking value network was made with (about 12 min on one core, 160 Vina dockings):

    svdd train-value molecules --reward docking --rollouts 128 --held-out 32 --steps 32 --every 4 \\
        --epochs 30 --out runs/molecules/dock-value
    python -m svdd.domains.molecules.export_value runs/molecules/dock-value moses-selfies-docking-value

The QED and SA value networks (12,288 rollouts each, states of every 8th step; about 25 min each
on a shared core; held-out correlation at most 0.28 for QED and 0.48 for SA, so weak):

    svdd train-value molecules --reward qed --rollouts 12288 --held-out 512 --every 8 --epochs 6 \
        --steps 32 --out runs/molecules/qed-value-12k
    python -m svdd.domains.molecules.export_value runs/molecules/qed-value-12k moses-selfies-qed-value
    (the same with sa)

It converts `value.pt` (a state dict for the registry's ConvValue) to `save_net` format, keeping the
training settings, the training-set size and the held-out correlation per time in the metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from svdd.processes.nets import ConvValue, save_net

from .pretrained import WEIGHTS, load_pretrained


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the --out directory of `svdd train-value molecules`")
    ap.add_argument("name", help="the shipped name, e.g. moses-selfies-docking-value")
    args = ap.parse_args(argv)
    state = torch.load(args.run / "value.pt", map_location="cpu", weights_only=False)
    if state.get("domain") != "molecules":
        raise SystemExit(f"{args.run / 'value.pt'} was trained for domain {state.get('domain')!r}, not 'molecules'")
    process = load_pretrained()
    net = ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)
    net.load_state_dict(state["state_dict"])
    meta = {k: v for k, v in state["metadata"].items() if k != "environment"}
    meta.update(reward=state["reward"], source="svdd train-value molecules (rollouts of moses-selfies)")
    save_net(net, WEIGHTS / f"{args.name}.pt", **meta)
    (WEIGHTS / f"{args.name}.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta["held_out_correlation"], indent=1))


if __name__ == "__main__":
    main()
