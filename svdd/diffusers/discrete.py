"""`DiscreteSVDDScheduler`: SVDD inside diffusers' discrete text pipelines, reached through the one
entry point `SVDDScheduler.from_pipeline`:

    pipe.scheduler = SVDDScheduler.from_pipeline(llada, reward=text_reward, num_candidates=8)
    texts = llada(prompt="...", gen_length=128, block_length=32).texts

Two pipelines, two corruption modes:

* `LLaDA2Pipeline` (masked, `BlockRefinementScheduler`) refines one block at a time: it calls its
  model on the prefix up to the current block, hands the block's logits to `scheduler.step(
  model_output, step_index, block_tokens, mask_token_id=..., ...)` and writes the step's commits
  (`transfer_index | editing_transfer_index`) into the block itself.
* `DiffusionGemmaPipeline` (uniform corruption: `BlockRefinementScheduler` with
  `mask_token_id=None`, `DiscreteDDIMScheduler` or `EntropyBoundScheduler`) denoises one canvas
  at a time from random tokens: its model reads the prompt and earlier canvases from an encoder
  KV cache and the last step's logits as self-conditioning, and the canvas becomes the step's
  `prev_sample`.

Each SVDD step, for a batch of B rows and M candidates:

1. the base scheduler takes one step on the B·M repeated rows, drawing M candidates per row with
   its own rule (confidence quota and threshold, token editing, DDIM's posterior, the entropy
   bound); BlockRefinement's committed positions (uniform mode) are repeated to the candidates and
   set to the winners' afterwards;
2. each candidate is scored by a soft value: PM, the reward of the completion the model predicts
   (its argmax on the candidate's masked, or not yet committed, positions), from the pipeline's own
   model call replayed on the candidate (a forward hook on `pipe.model`, `svdd.diffusers.replay`);
   a final candidate (no masks, a canvas's last step) is scored as it is;
3. one candidate per row is kept (argmax, or softmax(v/α)), and the base's output type is returned
   with the winner's rows, so the pipeline's own bookkeeping (EOS early stop, block continuation,
   editing, self-conditioning, adaptive stopping) runs unchanged.

The reward reads the generated text so far (tokens after the prompt up to the current block's end,
cut after the first EOS), decoded with the pipeline's tokenizer or processor
(`skip_special_tokens=True`), or tuples of token ids when the pipeline has none. Prompt tokens
never change (the base never edits them), rows the pipeline froze at EOS stay frozen (it ignores
their commits), and no mask is left (the base's quota empties every block, and candidates never
draw the mask token itself).

Candidates must differ: at temperature 0 or greedy sampling (the pipelines' defaults) the base's
draws are argmaxes, so SVDD draws at `config.temperature` (default 1.0: the model's own
distribution, the pretrained p of the target p·exp(r/α)) instead. Cost per step: B·M replayed
model rows while the candidates are not final. Refused with one line: values other than the
posterior mean, and pipelines without a `model` to replay.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from typing import Any, ClassVar, cast

import diffusers
import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..rewards import evaluate
from ..sampling.calls import new_stats
from ..sampling.selection import select
from .replay import DenoiserReplay, ReplayError, calling_pipeline

# the discrete schedulers this wrapper steps (every one diffusers 0.42's text pipelines accept)
DISCRETE_BASES = ("BlockRefinementScheduler", "DiscreteDDIMScheduler", "EntropyBoundScheduler")
DISCRETE_SCHEDULERS = DISCRETE_BASES

# what the uniform-corruption pipeline (DiffusionGemmaPipeline, diffusers 0.42) names its inputs:
# the model's canvas and self-conditioning arguments, and the call's local holding the context
# (prompt and earlier canvases); BlockRefinementScheduler keeps its committed positions in
# `_committed` in that mode. Release-specific names live here only.
CANVAS_ARGUMENT = "decoder_input_ids"
SELF_CONDITIONING_ARGUMENT = "self_conditioning_logits"
CONTEXT_LOCAL = "cur_input_ids"
COMMITTED_STATE = "_committed"


class DiscreteSVDDScheduler(SchedulerMixin, ConfigMixin):
    """SVDD around a diffusers discrete scheduler in a discrete text pipeline; see the module.

    Args:
        base_scheduler_class: "BlockRefinementScheduler", "DiscreteDDIMScheduler" or
            "EntropyBoundScheduler".
        base_scheduler_config: its config.
        num_candidates: M, candidate commits per row and step.
        alpha: selection temperature (0: argmax).
        temperature: the sampling temperature of the candidates when the pipeline's own is 0 or
            greedy (deterministic: M equal candidates); the pipeline's temperature otherwise.
        reward: `list[text] -> array[float]` (texts when the pipeline has a tokenizer, else tuples
            of token ids); NaN marks an invalid text.
        model: the pipeline's model (found on its first call when not given).
    """

    config_name = "scheduler_config.json"
    ignore_for_config: ClassVar[list[str]] = ["reward", "model", "tokenizer"]

    @register_to_config
    def __init__(
        self,
        base_scheduler_class: str = "BlockRefinementScheduler",
        base_scheduler_config: dict | None = None,
        num_candidates: int = 8,
        alpha: float = 0.0,
        temperature: float = 1.0,
        reward: Any = None,
        model: Any = None,
        tokenizer: Any = None,
    ):
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, numbers.Integral) or num_candidates < 1:
            raise ValueError(f"num_candidates must be an integer >= 1; got {num_candidates!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0 (0 selects by argmax); got {alpha!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
            raise ValueError(f"temperature must be a number > 0 (candidates must differ); got {temperature!r}")
        if base_scheduler_class not in DISCRETE_BASES:
            raise ValueError(
                f"SVDD wraps {', '.join(DISCRETE_BASES)} in discrete pipelines; got {base_scheduler_class!r}"
            )
        self.register_to_config(num_candidates=int(num_candidates), alpha=float(alpha), temperature=float(temperature))
        self.base: Any = cast(Any, getattr(diffusers, base_scheduler_class)).from_config(
            dict(base_scheduler_config or {})
        )
        corrector_steps = getattr(self.base.config, "corrector_steps", 0)
        if corrector_steps:  # DiffusionGemmaPipeline reads it from the scheduler's config
            self.register_to_config(corrector_steps=corrector_steps)
        self.reward: Any = None
        self.tokenizer: Any = tokenizer
        self.replay: DenoiserReplay | None = None
        self.stats: dict[str, Any] = {"steps": 0, **new_stats()}
        self.trace: list[dict[str, Any]] = []
        self._call: dict[str, Any] = {}  # the pipeline call's prompt_length and eos_token_id
        self.attach(reward=reward, model=model)

    @classmethod
    def from_pipeline(cls, pipe: Any, reward: Any = None, num_candidates: int = 8, alpha: float = 0.0, **kwargs: Any):
        base = pipe.scheduler
        if isinstance(base, DiscreteSVDDScheduler):
            base.detach()
            base = base.base
        name = type(base).__name__
        if name not in DISCRETE_BASES:
            raise ValueError(
                f"{type(pipe).__name__} uses {name}; SVDD's discrete drop-in wraps {', '.join(DISCRETE_BASES)}"
            )
        if getattr(pipe, "model", None) is None:
            raise TypeError(f"{type(pipe).__name__} has no `model` whose calls the posterior-mean value replays")
        config = {k: v for k, v in dict(base.config).items() if not k.startswith("_")}
        return cls(
            base_scheduler_class=name,
            base_scheduler_config=config,
            num_candidates=num_candidates,
            alpha=alpha,
            reward=reward,
            model=pipe.model,
            tokenizer=getattr(pipe, "tokenizer", None) or getattr(pipe, "processor", None),
            **kwargs,
        )

    def attach(self, reward: Any = None, model: Any = None) -> DiscreteSVDDScheduler:
        """Set the objects that are not saved with the config (None keeps what is there)."""
        if reward is not None:
            if not callable(reward):
                raise TypeError(f"reward must be callable list[text] -> array[float]; got {type(reward).__name__}")
            self.reward = reward
        if model is not None and (self.replay is None or self.replay.unet is not model):
            if not callable(getattr(model, "register_forward_hook", None)):
                raise TypeError(f"model must be the pipeline's model (a torch module); got {type(model).__name__}")
            self.detach()
            self.replay = DenoiserReplay.shared(model, self)
        return self

    def detach(self) -> None:
        if self.replay is not None:
            self.replay.release(self)
            self.replay = None

    # -- what the pipeline calls --------------------------------------------------------------

    @property
    def set_timesteps(self):
        def set_timesteps(*args: Any, **kwargs: Any) -> None:
            self.base.set_timesteps(*args, **kwargs)
            self.stats, self.trace = {"steps": 0, **new_stats()}, []
            self._call = _pipeline_call(self)

        set_timesteps.__signature__ = inspect.signature(self.base.set_timesteps)  # type: ignore[attr-defined]
        return set_timesteps

    @property
    def timesteps(self) -> torch.Tensor:
        return self.base.timesteps

    @property
    def num_inference_steps(self) -> int:
        return self.base.num_inference_steps

    def get_num_transfer_tokens(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.base.get_num_transfer_tokens(*args, **kwargs)

    def check_eos_finished(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.base.check_eos_finished(*args, **kwargs)

    def check_block_should_continue(self, *args: Any, **kwargs: Any) -> bool:
        return self.base.check_block_should_continue(*args, **kwargs)

    def add_noise(self, *args: Any, **kwargs: Any) -> Any:
        return self.base.add_noise(*args, **kwargs)

    @property
    def step(self):
        """`_step`, with the base's signature: DiffusionGemmaPipeline passes only the options the
        scheduler's `step` names (temperature, mask_token_id, ...)."""

        def step(*args: Any, **kwargs: Any) -> Any:
            return self._step(*args, **kwargs)

        step.__signature__ = inspect.signature(self.base.step)  # type: ignore[attr-defined]
        return step

    def step_correct(self, *args: Any, **kwargs: Any) -> Any:
        """The base's corrector sweep (DiscreteDDIMScheduler with corrector_steps), unsteered."""
        return self.base.step_correct(*args, **kwargs)

    def _step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        **options: Any,
    ) -> Any:
        """One SVDD step over the base scheduler's commits: `model_output` logits [B, L, V] of the
        block, `sample` block tokens Long[B, L]; returns the base's output with the kept candidates."""
        m = self.config.num_candidates
        if m == 1 and self.reward is None:
            return self.base.step(
                model_output, timestep, sample, generator=generator, return_dict=return_dict, **options
            )
        if self.reward is None:
            raise ValueError(
                "DiscreteSVDDScheduler has no reward: call attach(reward=...) or from_pipeline(pipe, reward=...)"
            )
        mask_id = options.get("mask_token_id")
        if "temperature" in options and (options["temperature"] == 0.0 or options.get("sampling_method") == "greedy"):
            options = {**options, "temperature": self.config.temperature}
            if "sampling_method" in options:
                options["sampling_method"] = "multinomial"
        b = sample.shape[0]
        drawn_from = model_output.clone()
        if mask_id is not None and 0 <= mask_id < drawn_from.shape[-1]:
            drawn_from[..., mask_id] = -torch.inf  # a candidate never commits the mask token itself
        committed = getattr(self.base, COMMITTED_STATE, None) if mask_id is None else None
        if committed is not None and int(timestep) > 0 and committed.shape == sample.shape:
            setattr(self.base, COMMITTED_STATE, committed.repeat_interleave(m, 0))  # each candidate's parent's
        out = self.base.step(
            drawn_from.repeat_interleave(m, 0), timestep, sample.repeat_interleave(m, 0),
            generator=generator, return_dict=True, **options,
        )  # fmt: skip
        if mask_id is None:  # uniform corruption: the canvas is the base's prev_sample
            values = self._uniform_values(model_output, out, int(timestep), m)
        else:  # masked: the pipeline writes the step's commits into the block
            commits = out.transfer_index | out.editing_transfer_index
            blocks = torch.where(commits, out.prev_sample, sample.repeat_interleave(m, 0))  # [B·M, L]
            values = self._values(model_output, blocks, mask_id, m)
        picked = select(values.view(b, m), float(self.config.alpha), generator)
        self.stats["fallback_rows"] += picked.fallback_rows
        self.stats["steps"] += 1
        self.trace.append({"t": int(timestep), "value_max": float(np.nanmax(values.numpy(), initial=-np.inf))})
        winners = torch.arange(b, device=sample.device) * m + picked.index.to(sample.device)
        committed = getattr(self.base, COMMITTED_STATE, None) if mask_id is None else None
        if committed is not None and committed.shape[0] == b * m:
            setattr(self.base, COMMITTED_STATE, committed[winners])  # the base goes on from the kept rows
        kept = type(out)(**{f.name: _rows_of(getattr(out, f.name), winners, b * m) for f in dataclasses.fields(out)})
        return kept if return_dict else kept.to_tuple()

    # -- values -------------------------------------------------------------------------------

    def _record_of(self, model_output: torch.Tensor) -> tuple[DenoiserReplay, dict[str, Any]]:
        """The model's recorder and the pipeline's last model call, checked to have made
        `model_output` [B, L, V] (its last L positions)."""
        if self.replay is None or not self.replay.records:
            raise ReplayError(
                "the posterior-mean value replays the pipeline's model call, but none was recorded: build the "
                "scheduler with SVDDScheduler.from_pipeline(pipe, ...) and call the pipeline"
            )
        record = self.replay.records[-1]
        recorded, length = record["output"], model_output.shape[1]
        if recorded.shape[1] < length or not torch.allclose(
            recorded[:, -length:].float(), model_output.float(), atol=1e-4, rtol=1e-4
        ):
            raise ReplayError(
                "the logits passed to step are not the last block of the pipeline's last model call; the "
                "replay cannot reproduce them"
            )
        return self.replay, record

    def _values(self, model_output: torch.Tensor, blocks: torch.Tensor, mask_id: int, m: int) -> torch.Tensor:
        """PM values float64 [B·M] of candidate blocks Long[B·M, L]: the reward of the generated text
        with each block's remaining masks filled by the model's argmax on that candidate."""
        replay, record = self._record_of(model_output)
        arguments = record["arguments"]
        length = blocks.shape[1]
        ids_name = replay._sample_name
        prefix = arguments[ids_name][:, :-length]
        parent = torch.arange(blocks.shape[0], device=blocks.device) // m
        windows = torch.cat([prefix[parent], blocks], dim=1)  # [B·M, W]
        masked = blocks == mask_id
        todo = masked.any(dim=1).nonzero().flatten()
        if todo.numel():
            logits = replay.call_rows(record, parent[todo], windows[todo])[:, -length:]
            filled = torch.where(masked[todo], logits.argmax(-1), blocks[todo])
            windows[todo, -length:] = filled
            self.stats["model_calls"] += int(todo.numel())
            self.stats["model_batches"] += 1
        texts = self._decode(windows)
        self.stats["reward_calls"] += len(texts)
        return torch.from_numpy(evaluate(self.reward, texts))

    def _uniform_values(self, model_output: torch.Tensor, out: Any, step_index: int, m: int) -> torch.Tensor:
        """PM values float64 [B·M] of the candidate canvases `out.prev_sample` Long[B·M, L] under
        uniform corruption: the reward of the context (prompt and earlier canvases) followed by each
        canvas with its uncommitted positions replaced by the model's argmax on that canvas (the
        recorded call replayed with the candidate canvas and this step's logits as the
        self-conditioning input: what the pipeline's next call would see). On the last step the
        canvas is final and scored as it is."""
        replay, record = self._record_of(model_output)
        if CANVAS_ARGUMENT not in record["arguments"]:
            raise ReplayError(f"the pipeline's model call has no `{CANVAS_ARGUMENT}` argument to replay the canvas in")
        _, local = calling_pipeline(self)
        context = local.get(CONTEXT_LOCAL)
        if not isinstance(context, torch.Tensor):
            raise ReplayError(f"the calling pipeline has no `{CONTEXT_LOCAL}` (prompt and earlier canvases)")
        candidates = out.prev_sample
        b = model_output.shape[0]
        filled = candidates.clone()
        if step_index < self.base.num_inference_steps - 1:
            committed = getattr(self.base, COMMITTED_STATE, None)
            if committed is None or committed.shape != candidates.shape:
                committed = torch.zeros_like(candidates, dtype=torch.bool)  # DDIM, EntropyBound: nothing is kept
            conditioning = out.pred_logits if getattr(out, "pred_logits", None) is not None else model_output
            for j in range(m):  # the model's KV cache holds B rows: one replay of B rows per candidate index
                rows = torch.arange(b, device=candidates.device) * m + j
                replaced = {CANVAS_ARGUMENT: candidates[rows]}
                if SELF_CONDITIONING_ARGUMENT in replay._signature.parameters:
                    replaced[SELF_CONDITIONING_ARGUMENT] = conditioning[rows]
                logits = replay.call_with(record, **replaced)
                filled[rows] = torch.where(committed[rows], candidates[rows], logits.argmax(-1))
            self.stats["model_calls"] += b * m
            self.stats["model_batches"] += m
        windows = torch.cat([context.repeat_interleave(m, 0), filled], dim=1)
        texts = self._decode(windows)
        self.stats["reward_calls"] += len(texts)
        return torch.from_numpy(evaluate(self.reward, texts))

    def _decode(self, windows: torch.Tensor) -> list[Any]:
        """The generated part of windows Long[R, W] (after the prompt, cut after the first EOS) as
        texts (with the pipeline's tokenizer) or tuples of ids."""
        start = int(self._call.get("prompt_length", 0))
        eos = self._call.get("eos_token_id")
        rows = []
        for row in windows[:, start:].tolist():
            if eos is not None and eos in row:
                row = row[: row.index(eos) + 1]
            rows.append(row)
        if self.tokenizer is not None:
            return list(self.tokenizer.batch_decode(rows, skip_special_tokens=True))
        return [tuple(r) for r in rows]


def _rows_of(value: Any, index: torch.Tensor, rows: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == rows:
        return value.index_select(0, index)
    return value


def _pipeline_call(scheduler: Any) -> dict[str, Any]:
    """prompt_length and eos_token_id of the calling pipeline's call (empty outside a pipeline)."""
    pipe, local = calling_pipeline(scheduler)
    if pipe is None:
        return {}
    return {"prompt_length": local.get("prompt_length", 0), "eos_token_id": local.get("eos_token_id")}
