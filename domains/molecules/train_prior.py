"""Train "moses-selfies" v2: a masked diffusion prior over SELFIES of the FULL MOSES train split.

Long-running, resumable CPU training (one thread) of `denoiser.MoleculeTransformer` (MDLM-style,
time-free pre-norm transformer without biases; default d = 128, 8 layers, 4 heads, MLP 2d with
GELU: 1.06M parameters, 2.3 MFLOP per token; one forward pass costs 2.3-2.8x, and sampling 1,000
molecules at K = 32 about 1.7x, the CPU time of "moses-selfies" v1) with the MDLM loss of
`svdd.processes.training.masked_loss` (log-linear schedule, stratified times, 1/t weights).

Data: every MOSES train molecule (1,584,663 SMILES, molsets 0.3.1 wheel) encoded with
`SelfiesTokenizer` at L = 56 (vocabulary = every symbol of the split) and cached as uint8 by
`prior_data.py` in OUT; a random 2,000 (numpy seed `--seed`) are held out for validation; the rest
are visited in a fresh random order each epoch (numpy seed [seed, epoch]).

Optimisation: AdamW (betas 0.9/0.99, weight decay on matrices only), linear warm-up then constant
lr (optionally a linear cool-down to lr/10 from `--decay-start` over `--decay-steps`, which may be
set on a later `--resume`), grad-norm clipping 1, EMA of the weights (decay min(ema, (1+n)/(10+n))).

Outputs in OUT (default /work/ckpt/moses-v2):
- `checkpoint.pt` (+ `checkpoint_prev.pt`): model, EMA, optimizer, step, epoch, position in the
  epoch's order, RNG states, wall seconds, config; written every `--checkpoint-minutes` (5), on
  SIGTERM/SIGINT and at the end; plain tensors/dicts only (torch.load(weights_only=True)).
- `snapshots/ema_step0012345.safetensors` (+ `.json`): EMA weights (fp32) every `--snapshot-minutes`
  (20) and at the end, svdd's weight-file pair with the tokenizer, step, wall seconds and the last
  validation NELBO in the metadata (read with `denoiser.load_denoiser`).
- `log.jsonl`: {"step", "wall_s", "train_loss", ...} every `--log-every` steps and
  {"step", "wall_s", "val_nelbo_per_token", "val_nelbo_per_token_ema"} every `--val-every` steps.

    cd /work/main && OMP_NUM_THREADS=1 setsid nohup .venv/bin/python -m svdd.domains.molecules.train_prior \\
        --out /work/ckpt/moses-v2 > /work/ckpt/moses-v2/train.log 2>&1 &
    # resume after a stop (same command plus --resume; architecture/seed come from the checkpoint):
    cd /work/main && OMP_NUM_THREADS=1 setsid nohup .venv/bin/python -m svdd.domains.molecules.train_prior \\
        --out /work/ckpt/moses-v2 --resume >> /work/ckpt/moses-v2/train.log 2>&1 &
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch

from svdd.processes.training import masked_loss, validation_loss

from .denoiser import MoleculeTransformer, flops_per_token, save_denoiser
from .prior_data import LENGTH, encode_moses_train

ARCH_KEYS = ("channels", "layers", "heads", "mlp_ratio", "activation", "time_conditioning")


def split(data: np.ndarray, num_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, val rows) of the cached array: a random `num_val` held out (numpy seed `seed`)."""
    perm = np.random.default_rng(seed).permutation(len(data))
    val_idx = np.sort(perm[:num_val])
    mask = np.ones(len(data), dtype=bool)
    mask[val_idx] = False
    return data[mask], data[val_idx]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def param_groups(net: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in net.named_parameters():
        (decay if p.dim() == 2 and name not in ("tokens.weight", "position") else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    if args.decay_start is not None and step >= args.decay_start:
        frac = min((step - args.decay_start) / max(args.decay_steps, 1), 1.0)
        return args.lr * (1.0 - 0.9 * frac)
    return args.lr


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), net.parameters()):
        e.lerp_(p, 1.0 - decay)


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, str(tmp))
    if path.exists():
        os.replace(path, path.with_name(path.stem + "_prev.pt"))
    os.replace(tmp, path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/work/ckpt/moses-v2"))
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-val", type=int, default=2000)
    ap.add_argument("--num-train", type=int, default=None, help="use only the first n training rows (smoke tests)")
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=int, default=2)
    ap.add_argument("--activation", default="gelu")
    ap.add_argument("--time-conditioning", action="store_true")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--decay-start", type=int, default=None, help="step where a linear cool-down to lr/10 starts")
    ap.add_argument("--decay-steps", type=int, default=10000)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.9999)
    ap.add_argument("--max-steps", type=int, default=None, help="stop at this step (default: run until killed)")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes of this run")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--snapshot-minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: Path = args.out
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"

    state = None
    if args.resume:
        if not ckpt_path.exists():
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        state = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
        saved = state["args"]
        # the data split, the architecture and the data order come from the checkpoint
        for key in ("seed", "num_val", "num_train", "batch_size", *ARCH_KEYS):
            setattr(args, key, saved[key])
    torch.manual_seed(args.seed)

    data, tokenizer = encode_moses_train(out, LENGTH)
    train_np, val_np = split(data, args.num_val, args.seed)
    if args.num_train is not None:
        train_np = train_np[: args.num_train]
    val = torch.from_numpy(val_np).long()
    mask_index = tokenizer.size
    print(f"data: {len(train_np)} train, {len(val_np)} val, {tokenizer}", flush=True)

    net = MoleculeTransformer(
        tokenizer.size,
        LENGTH,
        channels=args.channels,
        num_layers=args.layers,
        num_heads=args.heads,
        mlp_ratio=args.mlp_ratio,
        activation=args.activation,
        time_conditioning=args.time_conditioning,
    )
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(net, args.weight_decay), lr=args.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(args.seed)
    step, epoch, pos, wall_s, ema_updates = 0, 0, 0, 0.0, 0
    if state is not None:
        net.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, epoch, pos = int(state["step"]), int(state["epoch"]), int(state["pos"])
        wall_s, ema_updates = float(state["wall_s"]), int(state["ema_updates"])
        print(f"resumed at step {step} (epoch {epoch}, position {pos}, {wall_s:.0f} s trained)", flush=True)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"net: {net.config}, {n_params} parameters, {flops_per_token(net) / 1e6:.2f} MFLOP/token", flush=True)

    def arg_record() -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    def save_checkpoint() -> None:
        atomic_save(
            {
                "model": net.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "epoch": epoch,
                "pos": pos,
                "wall_s": wall_s,
                "ema_updates": ema_updates,
                "config": dict(net.config),
                "args": arg_record(),
                "tokenizer": tokenizer.to_dict(),
            },
            ckpt_path,
        )

    last_val: dict = {}

    def save_snapshot() -> Path:
        path = out / "snapshots" / f"ema_step{step:07d}"
        return save_denoiser(
            ema,
            path,
            tokenizer=tokenizer.to_dict(),
            step=step,
            epoch=epoch,
            wall_s=wall_s,
            samples_seen=step * args.batch_size,
            ema_decay=args.ema,
            seed=args.seed,
            train_size=len(train_np),
            val_size=len(val_np),
            parameters=n_params,
            data="MOSES train split (molsets 0.3.1 wheel), all molecules with <= 56 SELFIES symbols; "
            f"{len(val_np)} held out (numpy seed {args.seed})",
            torch=str(torch.__version__),
            **last_val,
        )

    stop = {"now": False}

    def on_signal(signum, frame):  # finish the step, checkpoint, exit
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    logf = open(out / "log.jsonl", "a")  # noqa: SIM115 - open for the whole run

    def log(**rec) -> None:
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    log(
        event="start",
        step=step,
        wall_s=wall_s,
        resumed=state is not None,
        args=arg_record(),
        parameters=n_params,
        pid=os.getpid(),
        time=time.time(),
    )
    order = epoch_order(len(train_np), args.seed, epoch)
    run_start = last_ckpt = last_snap = time.monotonic()
    seg_start = time.monotonic()
    running, count = 0.0, 0
    net.train()
    while True:
        if args.max_steps is not None and step >= args.max_steps:
            break
        if args.max_minutes is not None and time.monotonic() - run_start > 60 * args.max_minutes:
            break
        if stop["now"]:
            break
        if pos + args.batch_size > len(order):
            epoch, pos = epoch + 1, 0
            order = epoch_order(len(train_np), args.seed, epoch)
        x0 = torch.from_numpy(train_np[order[pos : pos + args.batch_size]]).long()
        lr = lr_at(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = masked_loss(net, x0, mask_index, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), args.grad_clip)
        opt.step()
        ema_updates += 1
        ema_update(ema, net, min(args.ema, (1 + ema_updates) / (10 + ema_updates)))
        step, pos = step + 1, pos + args.batch_size
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss at step {step}; resume from the last checkpoint with a lower lr")
        running, count = running + value, count + 1
        now = time.monotonic()
        wall_s += now - seg_start
        seg_start = now
        if step % args.log_every == 0:
            log(
                step=step,
                wall_s=round(wall_s, 1),
                train_loss=running / count,
                lr=lr,
                grad_norm=float(gnorm),
                epoch=epoch,
                samples_seen=step * args.batch_size,
            )
            print(f"step {step} epoch {epoch} loss {running / count:.4f} lr {lr:.2e} {wall_s:.0f} s", flush=True)
            running, count = 0.0, 0
        if step % args.val_every == 0:
            v_raw = validation_loss(net, val, mask_index)
            v_ema = validation_loss(ema, val, mask_index)
            net.train()
            last_val = {"val_nelbo_per_token": v_raw, "val_nelbo_per_token_ema": v_ema}
            log(step=step, wall_s=round(wall_s, 1), **last_val)
            print(f"step {step} val {v_raw:.4f} ema {v_ema:.4f}", flush=True)
            now = time.monotonic()
            wall_s += now - seg_start
            seg_start = now
        if now - last_snap > 60 * args.snapshot_minutes:
            print(f"snapshot {save_snapshot()}", flush=True)
            last_snap = time.monotonic()
        if now - last_ckpt > 60 * args.checkpoint_minutes:
            save_checkpoint()
            last_ckpt = time.monotonic()
    save_checkpoint()
    print(f"snapshot {save_snapshot()}", flush=True)
    log(event="stop", step=step, wall_s=round(wall_s, 1), signal=stop["now"], time=time.time())
    print(f"stopped at step {step}; checkpoint {ckpt_path}", flush=True)


if __name__ == "__main__":
    main()
