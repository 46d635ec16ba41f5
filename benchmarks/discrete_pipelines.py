"""SVDD in diffusers' discrete text pipelines: reward gain and model rows per step, for each
pipeline and base scheduler, on the tiny random models of `svdd.diffusers.tiny` (a token-level
reward: how many times one word appears in the generated text).

    OMP_NUM_THREADS=1 python -m benchmarks.discrete_pipelines

Writes benchmarks/results/discrete_pipelines.md. The models are random, so the gains say that
the steering works and what it costs, not how large it is on a trained model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from svdd.diffusers import SVDDScheduler
from svdd.diffusers.tiny import tiny_diffusion_gemma, tiny_llada2

RESULTS = Path(__file__).resolve().parent / "results"
PROMPT_IDS = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 2], [3, 3, 4], [5, 6, 7], [8, 9, 1], [2, 4, 6]])
PROMPTS = ["a b c", "d e f", "g h i", "a a b", "c c d", "e f g", "h i a", "b d f"]


def word_count(word: str):
    def reward(texts):
        return [float(t.split().count(word)) for t in texts]

    return reward


def id_count(token: int):
    def reward(seqs):
        return [float(sum(t == token for t in s)) for s in seqs]

    return reward


class Rows:
    """Rows of every call of the pipeline's model (a forward hook)."""

    def __init__(self, model, name: str):
        self.rows: list[int] = []
        self.name = name
        self.handle = model.register_forward_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs, output):
        ids = args[0] if args else kwargs[self.name]
        self.rows.append(int(ids.shape[0]))


def cases():
    from diffusers import BlockRefinementScheduler, DiscreteDDIMScheduler, EntropyBoundScheduler

    llada = dict(input_ids=PROMPT_IDS, gen_length=8, block_length=4, num_inference_steps=4, mask_token_id=11,
                 eos_token_id=10, output_type="seq", temperature=1.0)  # fmt: skip
    gemma = dict(prompt=PROMPTS, gen_length=8, num_inference_steps=4, temperature=1.0, confidence_threshold=None,
                 eos_token_id=99)  # fmt: skip
    yield "LLaDA2Pipeline", "BlockRefinement", lambda s: tiny_llada2(seed=s), {**llada, "editing_threshold": None}
    yield "LLaDA2Pipeline", "BlockRefinement + editing 0.5", lambda s: tiny_llada2(seed=s), {
        **llada,
        "editing_threshold": 0.5,
    }
    for name, make in (
        ("BlockRefinement (uniform)", BlockRefinementScheduler),
        ("BlockRefinement (uniform) + editing 0.05", lambda: BlockRefinementScheduler(editing_threshold=0.05)),
        ("DiscreteDDIM", DiscreteDDIMScheduler),
        ("DiscreteDDIM + corrector 1", lambda: DiscreteDDIMScheduler(corrector_steps=1)),
        ("EntropyBound", EntropyBoundScheduler),
    ):
        yield "DiffusionGemmaPipeline", name, (lambda s, make=make: tiny_diffusion_gemma(make(), seed=s)), gemma


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--num-candidates", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    m = args.num_candidates
    lines = [
        "# SVDD in diffusers' discrete text pipelines (tiny random models)",
        "",
        "Command: `OMP_NUM_THREADS=1 python -m benchmarks.discrete_pipelines"
        f" --seeds {args.seeds} --num-candidates {m}` (CPU, 1 thread).",
        "",
        f"B = {len(PROMPTS)} rows, gen_length 8 (two blocks/canvases of 4), 4 steps each, temperature 1.0, M = {m}, "
        f"α = 0 (argmax), {args.seeds} model seeds (each a different random model and noise). Reward: how many "
        "times token 7 (LLaDA2, ids) or the word `a` (DiffusionGemma, texts decoded by its processor) appears. "
        "Rows per step: the model rows the pipeline itself evaluates, and those SVDD's posterior-mean value "
        "replays (none on a block's or canvas's last step). Mean ± standard error over seeds of the per-row "
        "mean reward.",
        "",
        "| pipeline | base scheduler | base reward | SVDD reward | gain | pipeline rows / step | replayed rows / step"
        " | wall s base → SVDD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pipeline, base_name, build, call in cases():
        reward = id_count(7) if pipeline.startswith("LLaDA2") else word_count("a")
        read = (lambda out: out.sequences.tolist()) if pipeline.startswith("LLaDA2") else (lambda out: out.texts)
        name = "input_ids" if pipeline.startswith("LLaDA2") else "decoder_input_ids"
        base_r, svdd_r, walls, per_step = [], [], np.zeros(2), []
        for seed in range(args.seeds):
            pipe = build(seed)
            t0 = time.perf_counter()
            base = pipe(generator=torch.Generator().manual_seed(seed), **call)
            walls[0] += time.perf_counter() - t0
            pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=reward, num_candidates=m)
            rows = Rows(pipe.model, name)
            t0 = time.perf_counter()
            out = pipe(generator=torch.Generator().manual_seed(seed), **call)
            walls[1] += time.perf_counter() - t0
            rows.handle.remove()
            steps = pipe.scheduler.stats["steps"]
            replayed = pipe.scheduler.stats["model_calls"]
            per_step.append(((sum(rows.rows) - replayed) / steps, replayed / steps))
            base_r.append(np.mean(reward(read(base))))
            svdd_r.append(np.mean(reward(read(out))))
        b, s = np.array(base_r), np.array(svdd_r)
        se = lambda v: v.std(ddof=1) / np.sqrt(len(v))  # noqa: E731
        own, rep = np.mean(per_step, axis=0)
        lines.append(
            f"| {pipeline} | {base_name} | {b.mean():.2f} ± {se(b):.2f} | {s.mean():.2f} ± {se(s):.2f} | "
            f"{s.mean() - b.mean():+.2f} | {own:.1f} | {rep:.1f} | {walls[0]:.1f} → {walls[1]:.1f} |"
        )
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "discrete_pipelines.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
