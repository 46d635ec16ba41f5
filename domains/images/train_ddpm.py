"""Train the pretrained unconditional DDPM of the images domain (Fashion-MNIST, 1x32x32).

Model: diffusers `UNet2DModel` (block_out_channels (16, 32, 64), layers_per_block 1, self-attention
at 8x8 only; ~0.7 M parameters, ~3 MB) with `DDPMScheduler(num_train_timesteps=1000)` (linear betas),
epsilon prediction, MSE loss, AdamW, EMA of the weights (the EMA weights are what ships).
Data: Debian `dataset-fashion-mnist` train split (60k), padded to 32x32, scaled to [-1, 1].
Seed 0; 1 CPU thread. Resumable: a full checkpoint (model, EMA, optimizer, step, RNG) is written
every `--ckpt-every` steps (`--resume` continues from it), and the EMA pipeline is exported with `save_pretrained` to
`weights/ddpm/` each time, so an interrupted run still leaves a usable model.

    python -m svdd.domains.images.train_ddpm --max-minutes 50
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from svdd.processes.weights import load_checkpoint, save_checkpoint

from .data import DATA_DIR, load_fashion_mnist, to_model_space

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DDPM_DIR = WEIGHTS_DIR / "ddpm"

UNET_CONFIG = dict(
    sample_size=32,
    in_channels=1,
    out_channels=1,
    layers_per_block=1,
    norm_num_groups=8,
    block_out_channels=(16, 32, 64),
    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
)


def build():
    """A fresh (UNet2DModel, DDPMScheduler) pair with the shipped configuration."""
    from diffusers import DDPMScheduler, UNet2DModel

    return UNet2DModel(**UNET_CONFIG), DDPMScheduler(num_train_timesteps=1000)


def export(ema, scheduler, out_dir: Path, meta: dict) -> None:
    """Write the EMA weights as a DDPMPipeline (model_index.json + unet/ + scheduler/)."""
    from diffusers import DDPMPipeline

    DDPMPipeline(unet=ema, scheduler=scheduler).save_pretrained(out_dir)
    (out_dir / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--max-minutes", type=float, default=50.0, help="wall-clock budget of this invocation")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument(
        "--ckpt",
        type=Path,
        default=Path("/tmp/svdd-images-ddpm-ckpt.pt"),
        help="full training state, written every --ckpt-every steps (not shipped)",
    )
    p.add_argument("--resume", action="store_true", help="continue from --ckpt if it exists")
    p.add_argument("--out", type=Path, default=DDPM_DIR)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train = to_model_space(load_fashion_mnist("train")[0])  # [60000, 1, 32, 32]
    model, scheduler = build()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    step, seconds = 0, 0.0
    if args.resume and args.ckpt.exists():
        try:
            state = load_checkpoint(args.ckpt, "DDPM training checkpoint")  # weights_only=True
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        step, seconds = state["step"], state["seconds"]
        print(f"resumed from {args.ckpt} at step {step}", flush=True)
    alphas_cumprod = scheduler.alphas_cumprod  # [1000]
    n_params = sum(q.numel() for q in model.parameters())

    def meta() -> dict:
        return {
            "step": step,
            "train_seconds": round(seconds, 1),
            "params": n_params,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup": args.warmup,
            "ema_decay": args.ema_decay,
            "seed": args.seed,
            "threads": args.threads,
            "data": f"Debian dataset-fashion-mnist train split ({DATA_DIR}), padded to 32x32, [-1, 1]",
            "unet_config": UNET_CONFIG,
            "torch": torch.__version__,
            "command": "python -m svdd.domains.images.train_ddpm (resumed invocations add steps)",
        }

    def checkpoint() -> None:
        save_checkpoint(
            args.ckpt,
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "gen": gen.get_state(),
                "step": step,
                "seconds": seconds,
            },
        )
        export(ema, scheduler, args.out, meta())

    t_start = time.time()
    bar = tqdm(total=args.max_steps, initial=step, desc="ddpm", mininterval=30)
    running = None
    model.train()
    while step < args.max_steps and time.time() - t_start < args.max_minutes * 60:
        t0 = time.time()
        idx = torch.randint(0, len(x_train), (args.batch_size,), generator=gen)
        x0 = x_train[idx]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,), generator=gen)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = F.mse_loss(model(xt, t).sample, noise)
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema_update(ema, model, min(args.ema_decay, (1 + step) / (10 + step)))
        seconds += time.time() - t0
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if step % args.ckpt_every == 0:
            checkpoint()
            print(f"step {step}: loss {running:.4f}, {seconds / 60:.1f} train-min", flush=True)
    bar.close()
    checkpoint()
    print(f"done: step {step}, {seconds / 60:.1f} train-min; exported EMA pipeline to {args.out}", flush=True)


if __name__ == "__main__":
    main()
