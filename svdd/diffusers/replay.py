"""Re-running a pipeline's denoiser calls of a step on new samples, for posterior-mean values
inside a scheduler.

A scheduler only sees `step(model_output, t, sample)`: the prompt embeddings, class labels, CFG
and the denoiser's other inputs stay inside the pipeline. `DenoiserReplay` registers a forward
hook on the pipeline's denoiser (`pipe.unet` or `pipe.transformer`) that records the arguments
and output of the calls the pipeline makes. At `step`, `layout` works out how the step's
`model_output` was made from those calls, and `replay` evaluates the same function on the
children of every sample at the next timestep:

* every input whose batch equals the recorded one (encoder_hidden_states, pooled projections,
  class labels, attention masks, added_cond_kwargs tensors, a batched timestep, ...) is taken
  from the children's parent row; per-token ids shared by all rows (Flux's txt_ids/img_ids) are
  kept whole; the noisy sample goes in the denoiser's first argument (`sample` for UNets,
  `hidden_states` for transformers);
* the timestep is given in the pipeline's own scale (the scheduler's, or /1000 for Flux);
* the output is cut to the latent channels when the model learns its variance (PixArt, DiT) and
  combined as the pipeline did: no CFG; one call on [uncond; cond] (SD, SDXL, SD3, PixArt, Sana)
  or [cond; uncond] rows (DiT, whose scheduler steps on the doubled batch); or two separate calls
  (Flux's true CFG). Anything else (guidance rescale, skip-layer guidance, a pipeline that edits
  the prediction) is refused with an error, so a replay is never silently wrong.

Cost: B·M child rows per step (2·B·M denoiser rows with CFG), in chunks of `max_batch` children.

One hook per denoiser: `DenoiserReplay.shared(denoiser, user)` hands every scheduler on the same
denoiser the same recorder. The hook is removed when its last user is released (`release`, e.g.
`SVDDScheduler.detach`) or garbage-collected, so swapping schedulers back and forth never piles
up hooks. The hook holds the recorder weakly; the recorder holds the denoiser.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import types
import weakref
from typing import Any, ClassVar

import torch


class ReplayError(RuntimeError):
    """The scheduler cannot reproduce the pipeline's model on the children."""


class DenoiserReplay:
    """Records the calls a pipeline makes to its denoiser `unet` (a UNet or a transformer) and re-runs
    a step's calls on new samples."""

    _live: ClassVar[weakref.WeakValueDictionary[int, DenoiserReplay]] = weakref.WeakValueDictionary()

    def __init__(self, unet: Any):
        self.unet = unet
        self.records: list[dict[str, Any]] = []  # the last denoiser calls: {"arguments", "output"}
        self.calls = 0  # forward passes made by `replay`
        self.rows = 0  # UNet rows evaluated by `replay` (2 per child with CFG)
        self.pipeline_rows = 0  # UNet rows of the pipeline's own calls since `take_pipeline_rows`
        self._replaying = False
        self._users: weakref.WeakSet[Any] = weakref.WeakSet()
        self._signature = inspect.signature(unet.forward)
        # the noisy sample's argument: `sample` (UNets) or `hidden_states` (transformers)
        self._sample_name = next(iter(self._signature.parameters))
        self._handle = unet.register_forward_hook(_WeakHook(self), with_kwargs=True)
        self._finalizer = weakref.finalize(self, self._handle.remove)

    @classmethod
    def shared(cls, unet: Any, user: Any) -> DenoiserReplay:
        """The recorder of `unet` (made and hooked if it has none), with `user` registered on it."""
        replay = cls._live.get(id(unet))
        if replay is None or replay.unet is not unet or not replay.hooked:
            replay = cls(unet)
            cls._live[id(unet)] = replay
        replay._users.add(user)
        return replay

    @property
    def hooked(self) -> bool:
        """Whether the forward hook is still on the UNet."""
        return self._finalizer.alive

    def release(self, user: Any) -> None:
        """`user` no longer needs the recorder; the hook goes when no user is left."""
        self._users.discard(user)
        if not self._users:
            self.remove()

    def remove(self) -> None:
        """Remove the hook from the UNet (for every user)."""
        self._finalizer()
        if DenoiserReplay._live.get(id(self.unet)) is self:
            del DenoiserReplay._live[id(self.unet)]

    def _record(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        if self._replaying:
            return
        bound = self._signature.bind(*args, **kwargs)
        out = main_output(output)
        self.records.append({"arguments": dict(bound.arguments), "output": out.detach()})
        del self.records[:-2]  # a step needs at most its last two calls (a separate CFG pair)
        self.pipeline_rows += out.shape[0]

    @property
    def last(self) -> dict[str, Any] | None:
        """The last recorded call ({"arguments", "output"}), or None."""
        return self.records[-1] if self.records else None

    def take_pipeline_rows(self) -> int:
        """The UNet rows of the pipeline's own calls since the last time this was called."""
        rows, self.pipeline_rows = self.pipeline_rows, 0
        return rows

    def layout(self, model_output: torch.Tensor, timestep: Any) -> Layout:
        """How the pipeline's calls of this step made the `model_output` [b, ...] passed to `step`.

        Tried in turn: the last call's output itself (no CFG); one call on 2b rows, [uncond; cond]
        or [cond; uncond], combined as uncond + g·(cond - uncond) (CFG); the last two calls on b rows
        each, [cond call, uncond call] (Flux's true CFG); one call on b rows whose halves are
        [cond; uncond] and a `model_output` whose halves are equal (DiT's CFG on the doubled batch,
        `Layout.doubled`). A learned-sigma output (2C channels for C) is cut to its first C
        channels, as the pipelines do. g is recovered by least squares and checked.
        """
        if not self.records:
            raise ReplayError(
                "SVDDScheduler's posterior-mean value replays the pipeline's denoiser call, but no call "
                "was recorded: build the scheduler with SVDDScheduler.from_pipeline(pipe, ...) "
                "(or scheduler.attach(pipe=pipe)) and call the pipeline, or use "
                "value=svdd.LearnedValue(fn), which needs no denoiser call"
            )
        target = model_output.detach().double()
        b = target.shape[0]
        outs = [self._cut(r["output"], model_output).double() for r in self.records]
        scale = self._timestep_scale(self.records[-1]["arguments"], timestep)
        tol = (1e-2 if model_output.dtype in (torch.float16, torch.bfloat16) else 1e-4) * (
            float(target.abs().max()) + 1.0
        )
        last, out = self.records[-1], outs[-1]
        if out.shape == target.shape and float((out - target).abs().max()) <= tol:
            return Layout([last], scale)
        if out.shape[0] == 2 * b:
            low, high = out.chunk(2)
            for cond_first in (False, True):
                cond, uncond = (low, high) if cond_first else (high, low)
                g = _guidance(cond, uncond, target, tol)
                if g is not None:
                    return Layout([last], scale, g=g, cfg="batched", cond_first=cond_first)
        if len(outs) == 2 and outs[0].shape == target.shape == out.shape:
            previous = self.records[0]["arguments"].get("timestep")
            if _first(previous) == _first(last["arguments"].get("timestep")):
                g = _guidance(outs[0], out, target, tol)
                if g is not None:
                    return Layout(list(self.records), scale, g=g, cfg="separate")
        if out.shape == target.shape and b % 2 == 0 and torch.equal(target[: b // 2], target[b // 2 :]):
            cond, uncond = out.chunk(2)
            g = _guidance(cond, uncond, target[: b // 2], tol)
            if g is not None:
                return Layout([last], scale, g=g, cfg="batched", cond_first=True, doubled=True)
        raise ReplayError(
            "the model_output passed to step is not the UNet's output (nor the transformer's), nor "
            "classifier-free guidance uncond + g·(cond - uncond) of the pipeline's last denoiser call(s) (guidance "
            "rescale, skip-layer guidance or another change to the prediction); the posterior-mean "
            "replay cannot reproduce it. Use value=svdd.LearnedValue(fn), or "
            "svdd.diffusers.DiffusersProcess with svdd.sample"
        )

    def _timestep_scale(self, arguments: dict[str, Any], timestep: Any) -> float:
        """The factor from the scheduler's timestep to the one the denoiser got: 1, or 1/1000 (Flux)."""
        recorded = arguments.get("timestep")
        if recorded is None:
            return 1.0
        got, stepped = _first(recorded), _first(timestep)
        for scale in (1.0, 1e-3):
            if abs(got - stepped * scale) <= 1e-4 * max(1.0, abs(stepped * scale)):
                return scale
        raise ReplayError(
            f"the last denoiser call was at timestep {got}, but step was called at {stepped}; the "
            "replay needs the pipeline's denoiser call of this very step"
        )

    @staticmethod
    def _cut(output: torch.Tensor, model_output: torch.Tensor) -> torch.Tensor:
        """A learned-sigma output [R, 2C, ...] cut to its first C channels (others unchanged)."""
        c = model_output.shape[1] if model_output.dim() > 1 else None
        if (
            c is not None
            and output.dim() == model_output.dim()
            and output.shape[1] == 2 * c
            and output.shape[2:] == model_output.shape[2:]
        ):
            return output[:, :c]
        return output

    def replay(
        self,
        layout: Layout,
        children: torch.Tensor,
        child_input: torch.Tensor,
        child_timestep: Any,
        num_candidates: int,
        max_batch: int | None = None,
    ) -> torch.Tensor:
        """The pipeline's prediction on `children` [B·M, ...] at `child_timestep`, made the way
        `layout` says the step's `model_output` was made.

        `child_input` is `scale_model_input(children, child_timestep)`; child row r belongs to
        parent r // num_candidates. Returns [B·M, ...] (CFG-combined when the pipeline used CFG).
        """
        n = children.shape[0]
        step = max_batch or n
        t = child_timestep * layout.timestep_scale  # in the denoiser's own timestep scale
        parts = []
        with torch.no_grad():
            for start in range(0, n, step):
                parent = torch.arange(start, min(start + step, n), device=children.device) // num_candidates
                x_in = child_input[start : start + step]
                outs = [self._call(record, rows, x_in, t) for record, rows in layout.rows(parent)]
                parts.append(layout.combine(outs, children.shape[1]))
        return torch.cat(parts)

    def call_rows(self, record: dict[str, Any], rows: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
        """The recorded call `record` on rows `rows` Long[n] of its batch, with `x_in` [n, ...] in the
        place of its first argument (the discrete pipelines' token ids); its main output [n, ...]."""
        with torch.no_grad():
            return self._call(record, rows, x_in, None)

    def call_with(self, record: dict[str, Any], **replaced: Any) -> torch.Tensor:
        """The recorded call `record` with the arguments in `replaced` swapped in, on the recorded
        batch (DiffusionGemma's canvas and self-conditioning logits, whose other inputs include a
        KV cache sized to that batch); its main output."""
        call = dict(record["arguments"])
        for name, parameter in self._signature.parameters.items():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                call.update(call.pop(name, {}))  # `**kwargs` arguments go back in as keywords
        call.update(replaced)
        self._replaying = True
        try:
            with torch.no_grad():
                out = main_output(self.unet(**call))
        finally:
            self._replaying = False
        self.calls += 1
        self.rows += out.shape[0]
        return out

    def _call(self, record: dict[str, Any], rows: torch.Tensor, x_in: torch.Tensor, t: Any) -> torch.Tensor:
        """The recorded call on rows `rows` of its batch, with samples x_in (repeated to fill them)."""
        arguments = record["arguments"]
        recorded_rows = record["output"].shape[0]
        call = {name: _rows(name, v, rows, recorded_rows) for name, v in arguments.items()}
        repeats = rows.shape[0] // x_in.shape[0]
        call[self._sample_name] = torch.cat([x_in] * repeats) if repeats > 1 else x_in
        if "timestep" in arguments:
            call["timestep"] = _timestep_like(arguments["timestep"], t, rows.shape[0])
        self._replaying = True
        try:
            out = main_output(self.unet(**call))
        finally:
            self._replaying = False
        self.calls += 1
        self.rows += rows.shape[0]
        return out


@dataclasses.dataclass
class Layout:
    """How one step's model_output was made from recorded denoiser calls (see `DenoiserReplay.layout`).

    cfg: None (one call, the output itself), "batched" (one call on 2B rows) or "separate" (two
    calls on B rows: cond, then uncond); cond_first: the batched call's rows are [cond; uncond];
    doubled: the scheduler steps on 2B rows whose halves are the same samples (DiT), so only the
    first half is sampled; timestep_scale: the denoiser's timestep over the scheduler's.
    """

    records: list[dict[str, Any]]
    timestep_scale: float
    g: float = 1.0
    cfg: str | None = None
    cond_first: bool = False
    doubled: bool = False

    def rows(self, parent: torch.Tensor) -> list[tuple[dict[str, Any], torch.Tensor]]:
        """(recorded call, its rows to take) for the children of parents `parent` [n]."""
        if self.cfg == "separate":
            return [(self.records[0], parent), (self.records[1], parent)]
        if self.cfg == "batched":
            half = self.records[-1]["output"].shape[0] // 2
            return [(self.records[-1], torch.cat([parent, parent + half]))]
        return [(self.records[-1], parent)]

    def combine(self, outs: list[torch.Tensor], channels: int) -> torch.Tensor:
        """The prediction [n, C, ...] from the replayed calls' outputs (learned sigma cut to C channels)."""
        outs = [o[:, :channels] if o.dim() > 2 and o.shape[1] == 2 * channels else o for o in outs]
        if self.cfg is None:
            return outs[0]
        if self.cfg == "separate":
            cond, uncond = outs
        else:
            low, high = outs[0].chunk(2)
            cond, uncond = (low, high) if self.cond_first else (high, low)
        return uncond + self.g * (cond - uncond)


def _guidance(cond: torch.Tensor, uncond: torch.Tensor, target: torch.Tensor, tol: float) -> float | None:
    """g with uncond + g·(cond - uncond) = target (least squares), or None when that does not hold."""
    if cond.shape != target.shape:
        return None
    diff = cond - uncond
    denom = float((diff * diff).sum())
    g = float(((target - uncond) * diff).sum()) / denom if denom > 0 else 1.0
    if float((uncond + g * diff - target).abs().max()) > tol:
        return None
    return g


def calling_pipeline(scheduler: Any) -> tuple[Any, dict[str, Any]]:
    """The pipeline whose `scheduler` is `scheduler`, found up the call stack, with the local
    variables of its call (its arguments: height, width, guidance_rescale, prompt_length, ...);
    (None, {}) outside a pipeline call."""
    frame: types.FrameType | None = sys._getframe(1)
    for _ in range(12):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if getattr(owner, "scheduler", None) is scheduler and callable(owner):
            return owner, dict(frame.f_locals)
        frame = frame.f_back
    return None, {}


def latent_unpacker(pipe: Any, arguments: dict[str, Any]) -> Any:
    """The pipeline's unpacking of packed latents [B, S, D] -> [B, C, H, W] (Flux) for its call's
    height and width, or None for pipelines that do not pack."""
    unpack = getattr(pipe, "_unpack_latents", None)
    height, width, factor = arguments.get("height"), arguments.get("width"), getattr(pipe, "vae_scale_factor", None)
    if callable(unpack) and all(isinstance(v, int) for v in (height, width, factor)):
        return functools.partial(unpack, height=height, width=width, vae_scale_factor=factor)
    return None


def main_output(output: Any) -> torch.Tensor:
    """The prediction in a denoiser's output: the tensor itself, `.logits` (language models),
    `.sample` (diffusers models) or the first item of a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    for name in ("logits", "sample"):
        value = getattr(output, name, None)
        if isinstance(value, torch.Tensor):
            return value
    return output[0]


class _WeakHook:
    """The forward hook: calls the recorder's `_record` while it is alive (the UNet must not keep it alive)."""

    def __init__(self, replay: DenoiserReplay):
        self._replay = weakref.ref(replay)

    def __call__(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        replay = self._replay()
        if replay is not None:
            replay._record(module, args, kwargs, output)


def _first(t: Any) -> float:
    if isinstance(t, torch.Tensor):
        return float(t.reshape(-1)[0]) if t.numel() else float("nan")
    return float(t)


# per-token position ids (Flux), shared by every row: never cut by rows
UNBATCHED = frozenset({"txt_ids", "img_ids"})


def _rows(name: str, value: Any, rows: torch.Tensor, recorded_rows: int) -> Any:
    """Rows `rows` of every tensor whose batch is the recorded batch; other values unchanged."""
    if name in UNBATCHED:
        return value
    if isinstance(value, torch.Tensor):
        if value.dim() > 0 and value.shape[0] == recorded_rows:
            return value.index_select(0, rows.to(value.device))
        return value
    if isinstance(value, dict):
        return {k: _rows(k, v, rows, recorded_rows) for k, v in value.items()}
    return value


def _timestep_like(recorded: Any, t: Any, rows: int) -> Any:
    """`t` in the form the pipeline passed its timestep: batched to `rows` when it was batched."""
    if isinstance(recorded, torch.Tensor) and recorded.dim() > 0:
        return torch.as_tensor(t, device=recorded.device, dtype=recorded.dtype).reshape(1).expand(rows)
    return t
