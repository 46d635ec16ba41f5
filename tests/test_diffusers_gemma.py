"""The drop-in scheduler in diffusers' `DiffusionGemmaPipeline` (block diffusion with a uniformly
corrupted canvas, an encoder KV cache and self-conditioning) with each base scheduler it accepts,
on a tiny random `DiffusionGemmaForBlockDiffusion` built from its transformers config."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")
pytest.importorskip("transformers.models.diffusion_gemma", reason="DiffusionGemma needs transformers >= 5.20 (dev)")

from conftest import seeded
from diffusers import (
    BlockRefinementScheduler,
    DiffusionGemmaPipelineOutput,
    DiscreteDDIMScheduler,
    EntropyBoundScheduler,
)

from svdd.diffusers import SVDDScheduler
from svdd.diffusers.discrete import DiscreteSVDDScheduler
from svdd.diffusers.tiny import tiny_diffusion_gemma

B, M, STEPS, CANVASES = 4, 8, 4, 2
PROMPTS = ["a b c", "d e f", "g h i", "a a a"]
# no EOS (an id outside the vocabulary): a text cut at an EOS drawn in the first canvas would leave the
# second canvas nothing to steer, and the tiny random model draws EOS as often as any word
CALL = dict(prompt=PROMPTS, gen_length=8, num_inference_steps=STEPS, confidence_threshold=None, eos_token_id=99)
BASES = {
    "block_refinement": BlockRefinementScheduler,
    "block_refinement_editing": lambda: BlockRefinementScheduler(editing_threshold=0.05),  # edits on the random model
    "discrete_ddim": DiscreteDDIMScheduler,
    "entropy_bound": EntropyBoundScheduler,
}


def a_count(texts):
    """A token-level text reward: how many words are "a"."""
    return [float(t.split().count("a")) for t in texts]


class Canvases:
    """The canvas rows of every call of the top model (a forward hook): the pipeline's and the replays'."""

    def __init__(self, model):
        self.rows: list[int] = []
        self.handle = model.register_forward_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs, output):
        self.rows.append(kwargs["decoder_input_ids"].shape[0])


def run(pipe, seed=0, **kwargs):
    return pipe(generator=seeded(seed), **{**CALL, **kwargs})


@pytest.mark.parametrize("base", BASES)
def test_the_swap_keeps_the_output_counts_rows_and_raises_the_reward(base):
    pipe = tiny_diffusion_gemma(BASES[base]())
    before = run(pipe, temperature=1.0)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=a_count, num_candidates=M)
    assert isinstance(pipe.scheduler, DiscreteSVDDScheduler)
    canvases = Canvases(pipe.model)
    try:
        out = run(pipe, temperature=1.0)
    finally:
        canvases.handle.remove()
    assert isinstance(out, DiffusionGemmaPipelineOutput)
    assert out.sequences.shape == before.sequences.shape == (B, 8) and len(out.texts) == B
    assert torch.equal(run(pipe, temperature=1.0).sequences, out.sequences)  # same seed, same output
    # per canvas: STEPS pipeline calls of B rows; the replays: M calls of B rows on every step but the last
    assert set(canvases.rows) == {B}
    assert len(canvases.rows) == CANVASES * (STEPS + M * (STEPS - 1))
    assert pipe.scheduler.stats["model_calls"] == CANVASES * (STEPS - 1) * B * M
    assert pipe.scheduler.stats["steps"] == CANVASES * STEPS
    assert sum(a_count(out.texts)) > sum(a_count(before.texts))


@pytest.mark.parametrize("base", BASES)
def test_one_candidate_is_the_base_scheduler_for_matched_noise(base):
    pipe = tiny_diffusion_gemma(BASES[base](), seed=1)
    before = run(pipe, seed=3, temperature=1.0)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=a_count, num_candidates=1)
    assert torch.equal(run(pipe, seed=3, temperature=1.0).sequences, before.sequences)


def test_the_pipeline_defaults_run_steered():
    """Greedy temperature 0, adaptive stopping and EOS early stop, as the pipeline ships them."""
    pipe = tiny_diffusion_gemma()
    before = pipe(prompt=PROMPTS, gen_length=8, num_inference_steps=STEPS, generator=seeded(0))
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=a_count, num_candidates=M)
    out = pipe(prompt=PROMPTS, gen_length=8, num_inference_steps=STEPS, generator=seeded(0))
    assert out.sequences.shape[0] == B and len(out.texts) == B
    assert sum(a_count(out.texts)) > sum(a_count(before.texts))


def test_the_reward_reads_the_generated_text_decoded_by_the_processor():
    pipe = tiny_diffusion_gemma()
    seen: list[str] = []

    def reward(texts):
        seen.extend(texts)
        return a_count(texts)

    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=reward, num_candidates=2)
    run(pipe, temperature=1.0)
    assert seen and all(isinstance(t, str) for t in seen)
    # the first canvas's candidates hold 4 generated words, the second's 8 (the prompt is never in them)
    assert {len(t.split()) for t in seen} <= set(range(9)) and max(len(t.split()) for t in seen) > 4


def test_ddim_corrector_sweeps_stay_with_the_base():
    pipe = tiny_diffusion_gemma(DiscreteDDIMScheduler(corrector_steps=1))
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=a_count, num_candidates=2)
    assert pipe.scheduler.config.corrector_steps == 1  # the pipeline folds the sweeps into its step budget
    canvases = Canvases(pipe.model)
    try:
        out = run(pipe, temperature=1.0)
    finally:
        canvases.handle.remove()
    assert out.sequences.shape == (B, 8)
    # per canvas: 3 predictor steps, the first with a corrector sweep (4 forwards); M=2 replays on 2 of the 3
    assert len(canvases.rows) == CANVASES * (STEPS + 2 * 2)
