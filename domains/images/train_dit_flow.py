"""Train the small transformer flow-matching model of the images domain (Fashion-MNIST, class-conditional).

Shipped as a standard diffusers `DiTPipeline` in `weights/dit_flow/` (`DiTPipeline.from_pretrained(path)`):

- `vae`: a tiny `AutoencoderKL` (1 channel, block_out_channels (16, 32, 32), one resnet per block,
  mid-block attention; ~0.24 M parameters): 1x32x32 images in [-1, 1] <-> 4x8x8 latents. Trained
  first (phase 1) with MSE + 1e-4 x KL; `scaling_factor` = 1 / std of the training-set latents (posterior samples).
- `transformer`: a `DiTTransformer2DModel` (adaLN-zero, patch 2 on the 4x8x8 latents = 16 tokens,
  hidden 128 = 4 heads x 32, 6 layers, out_channels = in_channels: no learned sigma). Classes 0-9
  are the Fashion-MNIST labels; `num_embeds_ada_norm=1000` so the label table has the null row 1000
  that `DiTPipeline` uses for classifier-free guidance (labels are replaced by 1000 with
  probability `--class-dropout` during training, the same draw for every block).
- `scheduler`: `DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
  flow_shift=1.0)` (how Sana ships a flow model; `DiTPipeline` needs `scale_model_input`, which
  the flow-matching Euler scheduler lacks).

Flow matching (rectified flow): x_t = (1 - s) x0 + s eps, the network predicts v = eps - x0 (MSE),
s ~ logit-normal(0, 1), and the network's timestep is s * 1000 -- the scale `DiTPipeline` passes
(the scheduler's `timesteps` are its flow sigmas x num_train_timesteps). AdamW with linear
warmup, gradient clipping at 1, EMA of the transformer weights (the EMA weights are what ships).

Data: Debian `dataset-fashion-mnist` train split (60k), padded to 32x32, scaled to [-1, 1].
Seed 0; 1 CPU thread. Resumable: full training state goes to `--ckpt-dir` (outside the repo):
`vae.pt` (phase 1, then marked done), `latents.pt` (the encoded training set) and `dit.pt`
(every `--ckpt-every` steps, each time also exporting the EMA pipeline to `--out`, so an
interrupted run still leaves a usable model). Resume with the same command plus `--resume`:

    python -m svdd.domains.images.train_dit_flow --max-minutes 47
    python -m svdd.domains.images.train_dit_flow --max-minutes 20 --resume

(`--resume --max-minutes 0` only re-exports the pipeline from the checkpoint.) The shipped model
came from the first command (1000 VAE steps, then 4850 transformer steps in 36.6 CPU-minutes).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from svdd.processes.weights import load_checkpoint, save_checkpoint

from .data import CLASS_NAMES, DATA_DIR, load_fashion_mnist, to_model_space

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DIT_FLOW_DIR = WEIGHTS_DIR / "dit_flow"
NULL_CLASS = 1000  # the class id DiTPipeline passes for the unconditional half of CFG

VAE_CONFIG = dict(
    in_channels=1,
    out_channels=1,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=32,
)
DIT_CONFIG = dict(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=4,
    out_channels=4,
    num_layers=6,
    sample_size=8,
    patch_size=2,
    num_embeds_ada_norm=1000,
)
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    prediction_type="flow_prediction",
    use_flow_sigmas=True,
    flow_shift=1.0,
)


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def build_transformer():
    """A fresh DiT whose label embedders never drop labels themselves (we drop them once per sample)."""
    from diffusers import DiTTransformer2DModel
    from diffusers.models.embeddings import LabelEmbedding

    model = DiTTransformer2DModel(**DIT_CONFIG)
    for m in model.modules():
        if isinstance(m, LabelEmbedding):
            m.dropout_prob = 0.0  # the table keeps its null row; dropout is done in the training loop
    return model


def build_scheduler():
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(**SCHEDULER_CONFIG)


def export(transformer, vae, out_dir: Path, meta: dict) -> None:
    """Write the EMA transformer + VAE + flow scheduler as a DiTPipeline (model_index.json + folders).

    The transformer's weights are stored in float16 (half the size; most of them are the 1001-row
    label tables of the adaLN blocks); `from_pretrained` loads them back as float32 by default."""
    from diffusers import DiTPipeline

    id2label = {str(i): name for i, name in enumerate(CLASS_NAMES)}
    half = copy.deepcopy(transformer).to(torch.float16)
    pipe = DiTPipeline(transformer=half, vae=vae, scheduler=build_scheduler(), id2label=id2label)
    pipe.register_to_config(id2label=id2label)  # so from_pretrained restores pipe.labels
    pipe.save_pretrained(out_dir)
    (out_dir / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def train_vae(args, x_train, x_test, deadline: float) -> tuple[torch.nn.Module, dict]:
    """Phase 1: the tiny AutoencoderKL. Returns (vae, record) once `--vae-steps` are done."""
    path = args.ckpt_dir / "vae.pt"
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    step, seconds, losses, record = 0, 0.0, [], None
    if args.resume and path.exists():
        state = load_checkpoint(path, "VAE training checkpoint")
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        step, seconds, losses, record = state["step"], state["seconds"], state["losses"], state["record"]
        print(f"vae: resumed from {path} at step {step}", flush=True)
    if record is not None:
        return vae.eval().requires_grad_(False), record

    def save() -> None:
        save_checkpoint(
            path,
            {
                "model": vae.state_dict(),
                "opt": opt.state_dict(),
                "gen": gen.get_state(),
                "step": step,
                "seconds": seconds,
                "losses": losses,
                "record": record,
            },
        )

    vae.train()
    running = None
    while step < args.vae_steps:
        if time.time() > deadline:
            save()
            raise SystemExit(f"vae: out of time at step {step}; rerun with --resume")
        t0 = time.time()
        x = x_train[torch.randint(0, len(x_train), (args.vae_batch_size,), generator=gen)]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        rec = F.mse_loss(vae.decode(z).sample, x)
        kl = 0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar).mean()
        loss = rec + args.kl_weight * kl
        for g in opt.param_groups:
            g["lr"] = args.vae_lr * min(1.0, (step + 1) / 100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        seconds += time.time() - t0
        running = rec.item() if running is None else 0.98 * running + 0.02 * rec.item()
        if step % 100 == 0:
            losses.append([step, round(running, 5), round(kl.item(), 4)])
            print(f"vae step {step}: recon mse {running:.4f}, kl {kl.item():.3f}, {seconds / 60:.1f} min", flush=True)
        if step % 250 == 0:
            save()
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        sq = 0.0
        for s in range(0, len(x_test), 500):
            xb = x_test[s : s + 500]
            sq += F.mse_loss(vae.decode(vae.encode(xb).latent_dist.mean).sample, xb, reduction="sum").item()
    record = {
        "steps": step,
        "train_seconds": round(seconds, 1),
        "batch_size": args.vae_batch_size,
        "lr": args.vae_lr,
        "kl_weight": args.kl_weight,
        "params": sum(q.numel() for q in vae.parameters()),
        "test_recon_mse": round(sq / x_test.numel(), 6),  # posterior mean -> decode, [-1, 1] pixel scale
        "losses": losses,  # [step, running recon mse, kl] every 100 steps
    }
    print(f"vae: done, test recon MSE {record['test_recon_mse']:.5f} ([-1, 1] scale)", flush=True)
    save()
    return vae, record


@torch.no_grad()
def encode_train(args, vae, x_train) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Posterior (mean, std) of every training image, cached in --ckpt-dir/latents.pt, and the scaling factor."""
    path = args.ckpt_dir / "latents.pt"
    if path.exists():
        state = load_checkpoint(path, "encoded training latents")
        return state["mean"], state["std"], state["scaling_factor"]
    t0 = time.time()
    means, stds = [], []
    for s in range(0, len(x_train), 500):
        post = vae.encode(x_train[s : s + 500]).latent_dist
        means.append(post.mean)
        stds.append(post.std)
    mean, std = torch.cat(means), torch.cat(stds)
    scaling_factor = float(1.0 / (mean.var() + std.pow(2).mean()).sqrt())  # 1 / std of posterior samples
    save_checkpoint(path, {"mean": mean, "std": std, "scaling_factor": scaling_factor})
    print(f"encoded {len(mean)} training images in {time.time() - t0:.0f} s; scaling_factor {scaling_factor:.4f}")
    return mean, std, scaling_factor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-minutes", type=float, default=45.0, help="wall-clock budget of this invocation")
    p.add_argument("--vae-steps", type=int, default=1000)
    p.add_argument("--vae-batch-size", type=int, default=32)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--kl-weight", type=float, default=1e-4)
    p.add_argument("--max-steps", type=int, default=100_000, help="transformer steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--class-dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument(
        "--ckpt-dir",
        type=Path,
        default=Path("/work/ckpt/dit-flow"),
        help="full training state (vae.pt, latents.pt, dit.pt; not shipped)",
    )
    p.add_argument("--resume", action="store_true", help="continue from --ckpt-dir if it holds state")
    p.add_argument("--out", type=Path, default=DIT_FLOW_DIR)
    p.add_argument("--train-limit", type=int, default=None, help="smoke tests: only the first N train images")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_start = time.time()
    deadline = t_start + args.max_minutes * 60
    args.ckpt_dir.mkdir(parents=True, exist_ok=True)

    images, labels = load_fashion_mnist("train")
    images, labels = images[: args.train_limit], labels[: args.train_limit]
    x_train, y_train = to_model_space(images), torch.from_numpy(labels)
    x_test = to_model_space(load_fashion_mnist("test")[0])

    vae, vae_record = train_vae(args, x_train, x_test, deadline)
    z_mean, z_std, scaling_factor = encode_train(args, vae, x_train)
    cast(Any, vae).register_to_config(scaling_factor=scaling_factor)  # a ConfigMixin method (mypy sees a Module)

    model = build_transformer()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed + 1)
    step, seconds, losses, invocations = 0, 0.0, [], []
    dit_path = args.ckpt_dir / "dit.pt"
    if args.resume and dit_path.exists():
        state = load_checkpoint(dit_path, "DiT flow training checkpoint")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        step, seconds, losses = state["step"], state["seconds"], state["losses"]
        # checkpoints written before "invocations" was recorded came from the documented first command
        invocations = state.get("invocations", ["python -m svdd.domains.images.train_dit_flow --max-minutes 47"])
        print(f"dit: resumed from {dit_path} at step {step}", flush=True)
    invocations.append("python -m svdd.domains.images.train_dit_flow " + " ".join(sys.argv[1:]))
    n_params = sum(q.numel() for q in model.parameters())
    print(f"dit: {n_params} parameters; vae: {vae_record['params']}", flush=True)

    def meta() -> dict:
        return {
            "step": step,
            "train_seconds": round(seconds, 1),
            "params": n_params,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup": args.warmup,
            "ema_decay": args.ema_decay,
            "class_dropout": args.class_dropout,
            "sigma_sampling": "logit-normal(0, 1); timestep = sigma * 1000",
            "objective": "flow matching: x_t = (1 - sigma) z + sigma eps, target v = eps - z (MSE)",
            "losses": losses,  # [step, running loss] every 250 steps
            "seed": args.seed,
            "threads": args.threads,
            "data": f"Debian dataset-fashion-mnist train split ({DATA_DIR}), padded to 32x32, [-1, 1]",
            "dit_config": DIT_CONFIG,
            "scheduler_config": SCHEDULER_CONFIG,
            "vae_config": VAE_CONFIG,
            "vae": vae_record,
            "scaling_factor": scaling_factor,
            "torch": torch.__version__,
            "command": invocations[0],
            "invocations": invocations,  # every invocation that continued this training state, in order
        }

    def checkpoint() -> None:
        save_checkpoint(
            dit_path,
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "gen": gen.get_state(),
                "step": step,
                "seconds": seconds,
                "losses": losses,
                "invocations": invocations,
            },
        )
        export(ema, vae, args.out, meta())

    running = None
    model.train()
    while step < args.max_steps and time.time() < deadline:
        t0 = time.time()
        idx = torch.randint(0, len(z_mean), (args.batch_size,), generator=gen)
        z0 = (z_mean[idx] + z_std[idx] * torch.randn(z_mean[idx].shape, generator=gen)) * scaling_factor
        y = y_train[idx].clone()
        y[torch.rand(args.batch_size, generator=gen) < args.class_dropout] = NULL_CLASS
        eps = torch.randn(z0.shape, generator=gen)
        sigma = torch.sigmoid(torch.randn(args.batch_size, generator=gen))
        s = sigma.view(-1, 1, 1, 1)
        zt = (1.0 - s) * z0 + s * eps
        loss = F.mse_loss(model(zt, timestep=sigma * 1000.0, class_labels=y).sample, eps - z0)
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
        if step % args.ckpt_every == 0:
            losses.append([step, round(running, 5)])
            checkpoint()
            print(f"dit step {step}: loss {running:.4f}, {seconds / 60:.1f} train-min", flush=True)
    checkpoint()
    print(f"done: dit step {step}, {seconds / 60:.1f} train-min; exported EMA pipeline to {args.out}", flush=True)


if __name__ == "__main__":
    main()
