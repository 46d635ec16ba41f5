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

It reads the run's `value.safetensors` + `value.json` (or the `value.pt` of an older svdd, with
torch.load(weights_only=True)) and writes WEIGHTS/NAME.safetensors + NAME.json (`save_net`), keeping
the training settings, the training-set size and the held-out correlation per time in the metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from svdd.processes.nets import ConvValue
from svdd.processes.weights import check_weights, load_checkpoint, load_net, save_net

from .pretrained import WEIGHTS, load_pretrained


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the --out directory of `svdd train-value molecules`")
    ap.add_argument("name", help="the shipped name, e.g. moses-selfies-docking-value")
    args = ap.parse_args(argv)
    process = load_pretrained()
    net = ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)
    try:
        if (args.run / "value.safetensors").exists():
            loaded, meta = load_net(args.run / "value.safetensors")
            check_weights(net, loaded.state_dict(), args.run / "value.safetensors")
            net.load_state_dict(loaded.state_dict())
            where = args.run / "value.safetensors"
        else:  # written by an older svdd
            where = args.run / "value.pt"
            state = load_checkpoint(where, "value network")
            check_weights(net, state["state_dict"], where)
            net.load_state_dict(state["state_dict"])
            meta = {**state["metadata"], "domain": state.get("domain"), "reward": state.get("reward")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if meta.get("domain") != "molecules":
        raise SystemExit(f"{where} was trained for domain {meta.get('domain')!r}, not 'molecules'")
    meta = {k: v for k, v in meta.items() if k != "environment"}
    meta["source"] = "svdd train-value molecules (rollouts of moses-selfies)"
    save_net(net, WEIGHTS / args.name, **meta)
    print(json.dumps(meta["held_out_correlation"], indent=1))


if __name__ == "__main__":
    main()
