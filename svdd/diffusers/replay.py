"""Re-running a pipeline's last UNet call on new samples, for posterior-mean values inside a
scheduler.

A scheduler only sees `step(model_output, t, sample)`: the prompt embeddings, CFG and other UNet
inputs stay inside the pipeline. `UNetReplay` registers a forward hook on the pipeline's UNet
that records the arguments and output of each call the pipeline makes. At `step`, `replay`
evaluates the same function on the children of every sample at the next timestep:

* every UNet input whose batch equals the recorded one (encoder_hidden_states, added_cond_kwargs
  tensors, a batched timestep, ...) is taken from the children's parent row;
* the recorded call is matched to the step: its timestep must equal the step's, and its output
  must reproduce the `model_output` handed to `step`: either exactly (no CFG; batch B) or as
  uncond + g·(cond - uncond) with the recorded halves [uncond; cond] (CFG; batch 2B), with g
  recovered by least squares. Anything else (guidance_rescale, a pipeline that edits the
  prediction) is refused with an error, so a replay is never silently wrong.

Cost: B·M child rows per step (2·B·M UNet rows with CFG), in chunks of `max_batch` children.

One hook per UNet: `UNetReplay.shared(unet, user)` hands every scheduler on the same UNet the same
recorder. The hook is removed when its last user is released (`release`, e.g.
`SVDDScheduler.detach`) or garbage-collected, so swapping schedulers back and forth never piles up
hooks. The hook holds the recorder weakly; the recorder holds the UNet.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, ClassVar

import torch


class ReplayError(RuntimeError):
    """The scheduler cannot reproduce the pipeline's model on the children."""


class UNetReplay:
    """Records the calls a pipeline makes to `unet` and re-runs the last one on new samples."""

    _live: ClassVar[weakref.WeakValueDictionary[int, UNetReplay]] = weakref.WeakValueDictionary()

    def __init__(self, unet: Any):
        self.unet = unet
        self.last: dict[str, Any] | None = None
        self.calls = 0  # forward passes made by `replay`
        self.rows = 0  # UNet rows evaluated by `replay` (2 per child with CFG)
        self.pipeline_rows = 0  # UNet rows of the pipeline's own calls since `take_pipeline_rows`
        self._replaying = False
        self._users: weakref.WeakSet[Any] = weakref.WeakSet()
        self._signature = inspect.signature(unet.forward)
        self._handle = unet.register_forward_hook(_WeakHook(self), with_kwargs=True)
        self._finalizer = weakref.finalize(self, self._handle.remove)

    @classmethod
    def shared(cls, unet: Any, user: Any) -> UNetReplay:
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
        if UNetReplay._live.get(id(self.unet)) is self:
            del UNetReplay._live[id(self.unet)]

    def _record(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        if self._replaying:
            return
        bound = self._signature.bind(*args, **kwargs)
        out = output if isinstance(output, torch.Tensor) else output[0]
        self.last = {"arguments": dict(bound.arguments), "output": out.detach()}
        self.pipeline_rows += out.shape[0]

    def take_pipeline_rows(self) -> int:
        """The UNet rows of the pipeline's own calls since the last time this was called."""
        rows, self.pipeline_rows = self.pipeline_rows, 0
        return rows

    def _match(self, model_output: torch.Tensor, timestep: Any) -> tuple[dict[str, Any], bool, float]:
        """The recorded arguments, whether they are a CFG pair, and the guidance scale."""
        if self.last is None:
            raise ReplayError(
                "SVDDScheduler's posterior-mean value replays the pipeline's UNet call, but no UNet "
                "call was recorded: build the scheduler with SVDDScheduler.from_pipeline(pipe, ...) "
                "(or scheduler.attach(pipe=pipe)) and call the pipeline, or use "
                "value=svdd.LearnedValue(fn), which needs no UNet"
            )
        arguments, out = self.last["arguments"], self.last["output"]
        recorded_t = arguments.get("timestep")
        if recorded_t is not None and _first(recorded_t) != _first(timestep):
            raise ReplayError(
                f"the last UNet call was at timestep {_first(recorded_t)}, but step was called at "
                f"{_first(timestep)}; the replay needs the pipeline's UNet call of this very step"
            )
        model_output = model_output.detach()
        b = model_output.shape[0]
        tol = 1e-2 if model_output.dtype in (torch.float16, torch.bfloat16) else 1e-4
        scale = float(model_output.abs().max()) + 1.0
        if out.shape[0] == b:
            if float((out.to(model_output.dtype) - model_output).abs().max()) > tol * scale:
                raise ReplayError(
                    "the model_output passed to step is not the UNet's output; the pipeline "
                    "transforms the prediction in a way the replay cannot reproduce. Use "
                    "value=svdd.LearnedValue(fn), or svdd.diffusers.DiffusersProcess with svdd.sample"
                )
            return arguments, False, 1.0
        if out.shape[0] != 2 * b:
            raise ReplayError(
                f"the last UNet call had batch {out.shape[0]}, the step's batch is {b}; expected "
                f"{b} (no CFG) or {2 * b} (CFG)"
            )
        uncond, cond = out.double().chunk(2)
        diff = cond - uncond
        denom = float((diff * diff).sum())
        g = float(((model_output.double() - uncond) * diff).sum()) / denom if denom > 0 else 1.0
        if float((uncond + g * diff - model_output.double()).abs().max()) > tol * scale:
            raise ReplayError(
                "the model_output passed to step is not uncond + g·(cond - uncond) of the last UNet "
                "call (guidance_rescale, or a pipeline-specific combination); the posterior-mean "
                "replay supports plain classifier-free guidance only. Use value=svdd.LearnedValue(fn)"
            )
        return arguments, True, g

    def replay(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        children: torch.Tensor,
        child_input: torch.Tensor,
        child_timestep: Any,
        num_candidates: int,
        max_batch: int | None = None,
    ) -> torch.Tensor:
        """The pipeline's prediction on `children` [B·M, ...] at `child_timestep`.

        `model_output` [B, ...] and `timestep` are what `step` received (to match the recorded
        call); `child_input` is `scale_model_input(children, child_timestep)`; child row r
        belongs to parent r // num_candidates. Returns [B·M, ...] (CFG-combined when the
        pipeline used CFG).
        """
        arguments, cfg, g = self._match(model_output, timestep)
        b = model_output.shape[0]
        recorded_rows = 2 * b if cfg else b
        n = children.shape[0]
        step = max_batch or n
        parts = []
        self._replaying = True
        try:
            with torch.no_grad():
                for start in range(0, n, step):
                    parent = torch.arange(start, min(start + step, n), device=children.device) // num_candidates
                    rows = torch.cat([parent, parent + b]) if cfg else parent
                    x_in = child_input[start : start + step]
                    call = {name: _rows(v, rows, recorded_rows) for name, v in arguments.items()}
                    call["sample"] = torch.cat([x_in, x_in]) if cfg else x_in
                    call["timestep"] = _timestep_like(arguments.get("timestep"), child_timestep, rows.shape[0])
                    out = self.unet(**call)
                    out = out if isinstance(out, torch.Tensor) else out[0]
                    self.calls += 1
                    self.rows += rows.shape[0]
                    if cfg:
                        uncond, cond = out.chunk(2)
                        out = uncond + g * (cond - uncond)
                    parts.append(out)
        finally:
            self._replaying = False
        return torch.cat(parts)


class _WeakHook:
    """The forward hook: calls the recorder's `_record` while it is alive (the UNet must not keep it alive)."""

    def __init__(self, replay: UNetReplay):
        self._replay = weakref.ref(replay)

    def __call__(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        replay = self._replay()
        if replay is not None:
            replay._record(module, args, kwargs, output)


def _first(t: Any) -> float:
    if isinstance(t, torch.Tensor):
        return float(t.reshape(-1)[0]) if t.numel() else float("nan")
    return float(t)


def _rows(value: Any, rows: torch.Tensor, recorded_rows: int) -> Any:
    """Rows `rows` of every tensor whose batch is the recorded batch; other values unchanged."""
    if isinstance(value, torch.Tensor):
        if value.dim() > 0 and value.shape[0] == recorded_rows:
            return value.index_select(0, rows.to(value.device))
        return value
    if isinstance(value, dict):
        return {k: _rows(v, rows, recorded_rows) for k, v in value.items()}
    return value


def _timestep_like(recorded: Any, t: Any, rows: int) -> Any:
    """`t` in the form the pipeline passed its timestep: batched to `rows` when it was batched."""
    if isinstance(recorded, torch.Tensor) and recorded.dim() > 0 and recorded.numel() > 1:
        return torch.as_tensor(t, device=recorded.device, dtype=recorded.dtype).reshape(1).expand(rows)
    return t
