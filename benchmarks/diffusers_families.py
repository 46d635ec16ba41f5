"""The drop-in scheduler on every diffusers image family: reward gain and denoiser rows per step,
base scheduler against `SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=M)`.

    OMP_NUM_THREADS=1 python -m benchmarks.diffusers_families

Families: Stable Diffusion 1.x (UNet, CFG), SD3 (MMDiT, flow matching, with and without CFG), Flux
(packed latents, guidance embedding; and true CFG as a separate negative call), PixArt-α (learned
sigma, DPM-Solver), Sana (DC-AE, flow-prediction DPM-Solver), DiT (class labels, learned sigma, CFG on
the doubled batch) on tiny random pipelines of `svdd.diffusers.tiny`, and the shipped DiT flow model
(`svdd.domains.images.DIT_FLOW_DIR`, trained). Writes benchmarks/results/diffusers_families.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from svdd.diffusers import SVDDScheduler
from svdd.diffusers.scheduler import denoiser_of
from svdd.diffusers.tiny import tiny_dit, tiny_flux, tiny_pixart, tiny_sana, tiny_sd3, tiny_stable_diffusion

RESULTS = Path(__file__).resolve().parent / "results"
B = 4


def brightness(images) -> list[float]:
    return [float(img.mean()) for img in images]


def embeds(seed: int, tokens: int = 5, width: int = 16) -> torch.Tensor:
    return torch.randn(B, tokens, width, generator=torch.Generator().manual_seed(seed))


def families() -> dict:
    """name -> (builder, call arguments, what the scheduler does)."""
    from svdd.domains.images import load_pipeline
    from svdd.domains.images.pretrained import DIT_FLOW_DIR

    sd3 = dict(prompt_embeds=embeds(1), pooled_prompt_embeds=embeds(2)[:, 0], negative_prompt_embeds=embeds(3),
               negative_pooled_prompt_embeds=embeds(4)[:, 0], guidance_scale=3.0, height=8, width=8)  # fmt: skip
    flux = dict(prompt_embeds=embeds(1), pooled_prompt_embeds=embeds(2)[:, 0], height=16, width=16,
                max_sequence_length=5)  # fmt: skip
    pixart = dict(prompt_embeds=embeds(1), prompt_attention_mask=torch.ones(B, 5), negative_prompt_embeds=embeds(3),
                  negative_prompt_attention_mask=torch.ones(B, 5), negative_prompt=None, use_resolution_binning=False,
                  height=8, width=8, guidance_scale=3.0)  # fmt: skip
    sana = {**pixart, "prompt_embeds": embeds(1, width=8), "negative_prompt_embeds": embeds(3, width=8),
            "height": 32, "width": 32}  # fmt: skip
    true_cfg = {**flux, "negative_prompt_embeds": embeds(3), "negative_pooled_prompt_embeds": embeds(4)[:, 0],
                "true_cfg_scale": 2.0}  # fmt: skip
    sd15 = dict(prompt=["abc"] * B, guidance_scale=3.0, height=8, width=8)
    return {
        "StableDiffusionPipeline (UNet, CFG)": (tiny_stable_diffusion, sd15),
        "StableDiffusion3Pipeline (CFG)": (tiny_sd3, sd3),
        "StableDiffusion3Pipeline (no CFG)": (tiny_sd3, {**sd3, "guidance_scale": 1.0}),
        "FluxPipeline": (tiny_flux, flux),
        "FluxPipeline (true CFG)": (tiny_flux, true_cfg),
        "PixArtAlphaPipeline": (tiny_pixart, pixart),
        "SanaPipeline": (tiny_sana, sana),
        "DiTPipeline (tiny, learned sigma, CFG)": (tiny_dit, dict(class_labels=[1, 2, 3, 4], guidance_scale=3.0)),
        "DiTPipeline (shipped flow model, CFG 2)": (
            lambda: load_pipeline(DIT_FLOW_DIR),
            dict(class_labels=[1, 3, 6, 8], guidance_scale=2.0),
        ),
    }


class Rows:
    def __init__(self, module):
        self.rows = 0
        self.handle = module.register_forward_hook(self.record)

    def record(self, module, args, output):
        self.rows += (output if isinstance(output, torch.Tensor) else output[0]).shape[0]


def stepping(scheduler) -> str:
    """How SVDD draws children from the wrapped base: a stochastic step with eta, or the base's own."""
    if scheduler.stochastic_mode:
        return f"{scheduler.stochastic_mode} step, eta {scheduler.config.eta}"
    algorithm = getattr(scheduler.base.config, "algorithm_type", None)
    return f"the base's own ({algorithm})" if algorithm else "the base's own (ancestral)"


def run(pipe, call: dict, steps: int, seed: int):
    torch.manual_seed(seed)  # DiT's and SD3's steps draw from the global generator
    return pipe(num_inference_steps=steps, generator=torch.Generator().manual_seed(seed), output_type="pt", **call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--num-candidates", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    m, k = args.num_candidates, args.steps
    lines = [
        "# The drop-in scheduler on every diffusers image family",
        "",
        f"Command: `OMP_NUM_THREADS=1 python -m benchmarks.diffusers_families --seeds {args.seeds} --steps {k} "
        f"--num-candidates {m}` (CPU, 1 thread).",
        "",
        f"B = {B} images, {k} steps, M = {m}, α = 0, reward = mean pixel value (brightness, in [0, 1]), "
        f"{args.seeds} seeds (tiny pipelines: a different random model per seed). Denoiser rows per step: the "
        "pipeline's own and the replayed ones (posterior-mean values on the B·M children, none on the last "
        "step; doubled with CFG). Mode: how SVDD draws the children from the pipeline's default scheduler.",
        "",
        "| pipeline | default scheduler | SVDD's children | base | SVDD | pipeline rows / step | replayed rows / step"
        " | wall s base → SVDD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (build, call) in families().items():
        base_r, svdd_r, walls, rows = [], [], np.zeros(2), []
        for seed in range(args.seeds):
            pipe = build() if "shipped" in name else build(seed=seed)
            pipe.set_progress_bar_config(disable=True)
            scheduler_name = type(pipe.scheduler).__name__
            t0 = time.perf_counter()
            base = run(pipe, call, k, seed)
            walls[0] += time.perf_counter() - t0
            pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=brightness, num_candidates=m)
            counter = Rows(denoiser_of(pipe))
            t0 = time.perf_counter()
            out = run(pipe, call, k, seed)
            walls[1] += time.perf_counter() - t0
            counter.handle.remove()
            own = pipe.scheduler.stats["pipeline_unet_rows"]
            rows.append((own / k, (counter.rows - own) / k))
            base_r.append(np.mean(brightness(base.images)))
            svdd_r.append(np.mean(brightness(out.images)))
            mode = stepping(pipe.scheduler)
        own, rep = np.mean(rows, axis=0)
        lines.append(
            f"| {name} | {scheduler_name} | {mode} | {np.mean(base_r):.3f} | {np.mean(svdd_r):.3f} | {own:.0f} | "
            f"{rep:.1f} | {walls[0]:.1f} → {walls[1]:.1f} |"
        )
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffusers_families.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
