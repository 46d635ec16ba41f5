"""The drop-in scheduler in diffusers' discrete text pipeline `LLaDA2Pipeline` (masked, block-wise
refinement with `BlockRefinementScheduler`), on a tiny random LLaDA-style model built locally."""

from __future__ import annotations

import re

import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusers integration needs the images extra")
pytest.importorskip("transformers", reason="the tokenizer test needs transformers (dev extra)")

from conftest import seeded
from diffusers import DiscreteDDIMScheduler, LLaDA2PipelineOutput

from svdd.diffusers import SVDDScheduler
from svdd.diffusers.discrete import DiscreteSVDDScheduler
from svdd.diffusers.tiny import tiny_llada2

MASK, EOS, B, M = 11, 10, 2, 8
PROMPT = torch.tensor([[1, 2, 3], [4, 5, 6]])
CALL = dict(input_ids=PROMPT, gen_length=8, block_length=4, num_inference_steps=4, mask_token_id=MASK,
            eos_token_id=EOS, output_type="seq", editing_threshold=None)  # fmt: skip


def sevens(seqs):
    """A token-level reward: how many 7s."""
    return [float(sum(t == 7 for t in s)) for s in seqs]


class Inputs:
    """Every model call's input ids and rows (a forward hook)."""

    def __init__(self, model):
        self.ids: list[torch.Tensor] = []
        self.handle = model.register_forward_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs, output):
        self.ids.append((args[0] if args else kwargs["input_ids"]).clone())

    def remove(self):
        self.handle.remove()


def run(pipe, seed=0, **kwargs):
    return pipe(generator=seeded(seed), **{**CALL, **kwargs})


def test_the_swap_keeps_the_output_prompt_and_counts_and_raises_the_reward():
    pipe = tiny_llada2()
    base = run(pipe, temperature=1.0)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=sevens, num_candidates=M)
    assert isinstance(pipe.scheduler, DiscreteSVDDScheduler)
    inputs = Inputs(pipe.model)
    try:
        out = run(pipe, temperature=1.0)
    finally:
        inputs.remove()
    again = run(pipe, temperature=1.0)
    assert isinstance(out, LLaDA2PipelineOutput) and out.sequences.shape == base.sequences.shape == (B, 8)
    assert torch.equal(out.sequences, again.sequences)
    assert not (out.sequences == MASK).any()
    assert all(torch.equal(ids[:, :3], PROMPT.repeat_interleave(ids.shape[0] // B, 0)) for ids in inputs.ids)
    pipeline_rows = sum(ids.shape[0] for ids in inputs.ids if ids.shape[0] == B)
    replayed = sum(ids.shape[0] for ids in inputs.ids if ids.shape[0] != B)
    assert replayed == pipe.scheduler.stats["model_calls"] and replayed % (B * M) == 0
    assert pipeline_rows == B * pipe.scheduler.stats["steps"]  # one pipeline call of B rows per step
    assert sum(sevens(out.sequences.tolist())) > sum(sevens(base.sequences.tolist()))


def test_one_candidate_is_the_base_scheduler_for_matched_noise():
    pipe = tiny_llada2(seed=1)
    base = run(pipe, seed=4, temperature=1.0)
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=sevens, num_candidates=1)
    assert torch.equal(run(pipe, seed=4, temperature=1.0).sequences, base.sequences)


def test_greedy_defaults_draw_candidates_at_the_config_temperature():
    pipe = tiny_llada2()
    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=sevens, num_candidates=M)
    assert pipe.scheduler.config.temperature == 1.0
    greedy = run(pipe)  # the pipeline's temperature 0: M equal candidates would leave nothing to choose
    assert sum(sevens(greedy.sequences.tolist())) > 0 and not (greedy.sequences == MASK).any()


def test_texts_reach_the_reward_and_come_back_decoded():
    pipe = tiny_llada2(tokenizer=True)
    seen: list[str] = []

    def has_g(texts):
        seen.extend(texts)
        return [float(len(re.findall(r"\bg\b", t))) for t in texts]

    pipe.scheduler = SVDDScheduler.from_pipeline(pipe, reward=has_g, num_candidates=M)
    out = run(pipe, output_type="text", temperature=1.0)
    assert len(out.texts) == B and all(isinstance(t, str) for t in out.texts)
    assert seen and all(isinstance(t, str) and "<mask>" not in t for t in seen)
    assert sum(has_g(out.texts)) >= 1


def test_bases_and_options_it_cannot_wrap_are_refused_in_one_line():
    pipe = tiny_llada2()
    with pytest.raises(ValueError, match="value, max_batch and eta are options of the continuous one"):
        SVDDScheduler.from_pipeline(pipe, reward=sevens, value=lambda x, t: x.sum(-1))
    with pytest.raises(ValueError, match="num_candidates must be an integer >= 1"):
        SVDDScheduler.from_pipeline(pipe, reward=sevens, num_candidates=0)
    pipe.scheduler = DiscreteDDIMScheduler()  # DiffusionGemma's schedulers are wrapped too (test_diffusers_gemma)
    assert isinstance(SVDDScheduler.from_pipeline(pipe, reward=sevens), DiscreteSVDDScheduler)
