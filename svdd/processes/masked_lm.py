"""Third-party masked and any-order models seen through the native denoiser contract.

A model people bring rarely follows svdd's native contract (logits over exactly the V real
tokens, mask id V). A Hugging Face `*ForMaskedLM` (ESM-2, BERT-style models, DPLM) has its mask
inside a larger vocabulary full of special tokens; MDLM's backbone returns raw logits that still
include the mask; LLaDA-style models have a fixed mask id and no time input; ESM-2 expects
<cls> ... <eos> around the sequence. `MaskedDiffusion.from_masked_lm` declares those facts and
returns a process (`MaskedLMDiffusion`) whose states follow the native contract, built on the
`MaskedLMDenoiser` this module makes, so every sampler, `add_mask`, `svdd.processes.training.elbo`
and `svdd.processes.toys.ExactChain` work unchanged.

State space (compact re-indexing): a state is Long[B, F] over the F *free* positions of the model
input (those not declared fixed), where token j stands for the model's id `token_ids[j]` and
V = len(token_ids) is the mask. `process.to_model_ids(states)` writes states into the model's
L positions (fixed positions hold their given ids, masks become `mask_token_id`), and
`process.encode(model_ids)` goes back. The denoiser keeps, at the free positions, the model's
logits at `token_ids` only: every other logit (special tokens, the mask) is excluded, so only
`token_ids` are ever generated and fixed positions never change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

TIME_FORMS = ("continuous", "discrete")
LOGITS_OVER = ("vocab", "tokens")


class MaskedLMDenoiser:
    """A foreign masked model seen through the native contract: (x_t Long[B, F], t float[B]) -> [B, F, V].

    Built by `masked_lm_denoiser` (which checks the arguments); see its docstring for their meaning.
    Each call builds model ids Long[B, L], calls the model once and restricts its logits.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        *,
        mask_token_id: int,
        token_ids: torch.Tensor,
        template: torch.Tensor,
        free: torch.Tensor,
        time: Any,
        num_train_timesteps: int | None,
        time_keyword: str | None,
        subs: bool,
        logits_over: str,
        pad_token_id: int | None,
    ):
        self.model = model
        self.mask_token_id = mask_token_id
        self.token_ids = token_ids
        self.template = template
        self.free = free
        self.time = time
        self.num_train_timesteps = num_train_timesteps
        self.time_keyword = time_keyword
        self.subs = subs
        self.logits_over = logits_over
        self.pad_token_id = pad_token_id
        self._lookup = torch.cat([token_ids, torch.tensor([mask_token_id], device=token_ids.device)])

    def to_model_ids(self, x: torch.Tensor) -> torch.Tensor:
        """States Long[B, F] (mask = V) -> model ids Long[B, L] with the fixed positions filled in."""
        ids = self.template.expand(x.shape[0], -1).clone()
        ids[:, self.free] = self._lookup[x]
        return ids

    def encode(self, model_ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Model ids Long[L] or Long[B, L] (e.g. a tokenized seed) -> states Long[F] or Long[B, F].

        Fixed positions must hold their declared ids, free positions ids from `token_ids`."""
        ids = torch.as_tensor(model_ids).to(self.template.device)
        single = ids.dim() == 1
        rows = ids.unsqueeze(0) if single else ids
        if rows.dim() != 2 or rows.shape[1] != len(self.template) or rows.is_floating_point():
            raise ValueError(
                f"model_ids must be integer ids of shape ({len(self.template)},) or (B, {len(self.template)}); "
                f"got {rows.dtype} of shape {tuple(ids.shape)}"
            )
        fixed_at = (self.template != self.mask_token_id).nonzero().flatten()
        wrong = (rows[:, fixed_at] != self.template[fixed_at]).any(dim=0)
        if wrong.any():
            raise ValueError(
                f"model_ids differ from the fixed ids at positions {fixed_at[wrong].tolist()}; "
                f"expected {self.template[fixed_at][wrong].tolist()} there"
            )
        free_ids = rows[:, self.free]
        match = free_ids.unsqueeze(-1) == self.token_ids  # [B, F, V]
        if not match.any(-1).all():
            bad = sorted(set(free_ids[~match.any(-1)].tolist()))
            raise ValueError(
                f"model_ids hold ids {bad} at free positions; only token_ids can be encoded ({self.token_ids.tolist()})"
            )
        states = match.long().argmax(-1)
        return states[0] if single else states

    def time_input(self, t: torch.Tensor) -> Any:
        """What the model receives for times t float[B] (None when it takes no time)."""
        if self.time is None:
            return None
        if self.time == "continuous":
            return t.to(torch.float32)
        if self.time == "discrete":
            assert self.num_train_timesteps is not None
            return (t.to(torch.float64) * self.num_train_timesteps).round().long()
        return self.time(t)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits float[B, F, V] over token_ids at the free positions (subs log-probs when `subs`)."""
        if isinstance(self.model, torch.nn.Module) and self.model.training:
            raise ValueError(_TRAINING_MODE)
        ids = self.to_model_ids(x)
        args: list[Any] = [ids]
        kwargs: dict[str, Any] = {}
        if self.pad_token_id is not None:
            kwargs["attention_mask"] = (ids != self.pad_token_id).long()
        time_input = self.time_input(t.to(x.device))
        if time_input is not None:
            if self.time_keyword:
                kwargs[self.time_keyword] = time_input
            else:
                args.append(time_input)
        logits = _logits_of(self.model(*args, **kwargs))
        self._check_shape(logits, ids.shape)
        logits = logits[:, self.free]
        if self.logits_over == "vocab":
            logits = logits.index_select(-1, self.token_ids)
        if not self.subs:
            return logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        carried = x != len(self.token_ids)  # unmasked: probability one on the token it holds
        one_hot = torch.full_like(log_probs, -torch.inf).scatter_(
            -1, x.clamp_max(len(self.token_ids) - 1).unsqueeze(-1), 0.0
        )
        return torch.where(carried.unsqueeze(-1), one_hot, log_probs)

    def _check_shape(self, logits: torch.Tensor, ids_shape: torch.Size) -> None:
        v = len(self.token_ids)
        if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(ids_shape):
            raise ValueError(
                f"the model returned logits of shape {tuple(logits.shape)}; expected "
                f"({ids_shape[0]}, {ids_shape[1]}, vocabulary) for input ids of shape {tuple(ids_shape)}"
            )
        if self.logits_over == "tokens" and logits.shape[-1] != v:
            raise ValueError(
                f"logits_over='tokens' needs logits over the {v} token_ids; the model returned "
                f"{logits.shape[-1]} (use logits_over='vocab' for logits over the whole vocabulary)"
            )
        if self.logits_over == "vocab" and logits.shape[-1] <= int(self.token_ids.max()):
            raise ValueError(
                f"the model returned logits over {logits.shape[-1]} ids but token_ids go up to "
                f"{int(self.token_ids.max())}; check token_ids or use logits_over='tokens'"
            )


_TRAINING_MODE = (
    "the model is in training mode (dropout would make its output random); call model.eval() before wrapping it"
)


def masked_lm_denoiser(
    model: Callable[..., Any],
    *,
    mask_token_id: int,
    token_ids: Sequence[int] | Mapping[str, int] | torch.Tensor,
    length: int,
    decode: Callable[[torch.Tensor], Sequence[Any]] | None = None,
    fixed: Mapping[int, int] | None = None,
    time: str | Callable[[torch.Tensor], Any] | None = None,
    num_train_timesteps: int | None = None,
    time_keyword: str | None = None,
    subs: bool = True,
    logits_over: str = "vocab",
    pad_token_id: int | None = None,
    tokenizer: Any = None,
    device: torch.device | str | None = None,
) -> tuple[MaskedLMDenoiser, Callable[[torch.Tensor], list[Any]]]:
    """Check the arguments of `MaskedDiffusion.from_masked_lm` and build its denoiser and decode.

    Args:
        model: a `transformers` `*ForMaskedLM` or any callable `model(input_ids Long[B, L], ...)`
            returning logits [B, L, vocab] (a tensor, or an object/dict with `.logits`/["logits"],
            or a tuple whose first item is the logits). Must be deterministic (eval mode).
        mask_token_id: the mask token's id in the model's vocabulary.
        token_ids: the ids that may be generated, in the order of the state's tokens 0..V-1: a
            sequence of ints, or a mapping {name: id} whose names the default decode joins.
            Every other logit is excluded (special tokens never appear).
        length: L, the number of positions the model sees, fixed ones included.
        decode: `model ids Long[B, L] -> B objects` (fixed positions included); default: strings
            joining the names of the tokens at the free positions and at fixed positions holding
            a token_id (a motif), skipping other fixed ids (<cls>, <eos>, pads); names come from a
            token_ids mapping or `tokenizer.convert_ids_to_tokens`; without names, tuples of ids.
        fixed: {position: id} held in every sample and never changed (a prefix such as <cls>, a
            suffix such as <eos>, a motif, conditioning tokens, pads); negative positions count
            from the end. The state covers only the other (free) positions.
        time: what time the model takes: None (it ignores time; MLMs, LLaDA); "continuous" (t in
            [0, 1], the masked fraction, float[B]); "discrete" (round(t·num_train_timesteps),
            Long[B]); or a callable t float[B] -> model input (e.g. MDLM's sigma(t)).
        num_train_timesteps: T for time="discrete".
        time_keyword: pass the time as this keyword argument instead of positionally after the ids.
        subs: the model output goes through MDLM's "subs" step, as MDLM's raw-logit checkpoints
            need: mask logit excluded (always, by the token_ids restriction), logits normalised to
            log-probabilities and unmasked positions given probability one on the token they hold.
            False returns the restricted logits untouched. Samples do not depend on it (transition
            and denoised only read masked positions); it changes what `process.model` returns.
        logits_over: "vocab" (logits over the model's vocabulary, indexed by model ids) or
            "tokens" (the callable already returns logits over exactly the V token_ids, in order).
        pad_token_id: pass `attention_mask = (ids != pad_token_id)` to the model; pads belong at
            fixed positions (e.g. `fixed={p: pad for p in range(n, L)}` to design n < L tokens).
        tokenizer: optional, for the default decode's token names.
        device: where states live; default the model's parameters' device (else CPU).

    Returns:
        (the denoiser over states Long[B, F], decode: states Long[B, F] -> B objects).
    """
    if not callable(model):
        raise TypeError(
            f"model must be callable (a *ForMaskedLM or a function of input ids); got {type(model).__name__}"
        )
    if isinstance(model, torch.nn.Module) and model.training:
        raise ValueError(_TRAINING_MODE)
    check_int("mask_token_id", mask_token_id, 0)
    check_int("length", length, 1)
    names, ids = _token_table(token_ids, tokenizer)
    if mask_token_id in ids:
        raise ValueError(f"token_ids must not contain the mask id {mask_token_id}: the mask is never generated")
    if pad_token_id is not None:
        check_int("pad_token_id", pad_token_id, 0)
        if pad_token_id in ids or pad_token_id == mask_token_id:
            raise ValueError(f"pad_token_id {pad_token_id} must be neither a token_id nor the mask id")
    template = torch.full((length,), mask_token_id, dtype=torch.long)
    for pos, tok in _check_fixed(fixed, length).items():
        if tok == mask_token_id:
            raise ValueError(f"fixed position {pos} holds the mask id {mask_token_id}; fixed positions hold real ids")
        template[pos] = tok
    free = (template == mask_token_id).nonzero().flatten()
    if free.numel() == 0:
        raise ValueError(f"every one of the {length} positions is fixed; nothing is left to generate")
    if time is not None and not callable(time) and time not in TIME_FORMS:
        raise ValueError(
            f"time must be None (the model takes no time), 'continuous', 'discrete' or a callable "
            f"t -> model input; got {time!r}"
        )
    if time == "discrete":
        check_int("num_train_timesteps", num_train_timesteps, 1)
    elif num_train_timesteps is not None:
        raise ValueError(f"num_train_timesteps is only used with time='discrete'; got time={time!r}")
    if logits_over not in LOGITS_OVER:
        raise ValueError(f"logits_over must be 'vocab' or 'tokens'; got {logits_over!r}")
    if not isinstance(subs, bool):
        raise TypeError(f"subs must be True or False; got {subs!r}")
    if time_keyword is not None and not (isinstance(time_keyword, str) and time_keyword.isidentifier()):
        raise ValueError(f"time_keyword must be an argument name or None; got {time_keyword!r}")
    if device is None:
        params = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
        device = params.device if params is not None else torch.device("cpu")
    device = torch.device(device)
    token_tensor = torch.tensor(ids, dtype=torch.long, device=device)
    template, free = template.to(device), free.to(device)
    denoiser = MaskedLMDenoiser(
        model,
        mask_token_id=mask_token_id,
        token_ids=token_tensor,
        template=template,
        free=free,
        time=time,
        num_train_timesteps=num_train_timesteps,
        time_keyword=time_keyword,
        subs=subs,
        logits_over=logits_over,
        pad_token_id=pad_token_id,
    )
    shown = (template == mask_token_id) | torch.isin(template, token_tensor)  # free positions and motif tokens
    return denoiser, _decoder(denoiser, decode, names, shown)


def _logits_of(output: Any) -> torch.Tensor:
    """The logits tensor of a model output: a tensor, `.logits`, ["logits"] or the first item of a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"the model returned {type(output).__name__}; expected a logits tensor, an output with "
        ".logits (transformers) or a tuple whose first item is the logits"
    )


def _decoder(
    denoiser: MaskedLMDenoiser,
    decode: Callable[[torch.Tensor], Sequence[Any]] | None,
    names: dict[int, str] | None,
    shown: torch.Tensor,
) -> Callable[[torch.Tensor], list[Any]]:
    """states Long[B, F] -> objects: the user's decode on model ids, else joined names / id tuples."""

    def decode_states(x: torch.Tensor) -> list[Any]:
        ids = denoiser.to_model_ids(x)
        if decode is not None:
            return list(decode(ids))
        rows = ids[:, shown].tolist()
        if names is None:
            return [tuple(row) for row in rows]
        return ["".join(names.get(i, "") for i in row) for row in rows]

    return decode_states


def _token_table(token_ids: Any, tokenizer: Any) -> tuple[dict[int, str] | None, list[int]]:
    """(names by id or None, ids in state order) from a sequence/tensor of ids or a {name: id} mapping."""
    if isinstance(token_ids, Mapping):
        names_in, raw = list(token_ids), list(token_ids.values())
    else:
        if isinstance(token_ids, (str, bytes)) or not hasattr(token_ids, "__iter__"):
            raise TypeError(f"token_ids must be a sequence of ints or a mapping {{name: id}}; got {token_ids!r}")
        names_in, raw = None, [int(i) if isinstance(i, torch.Tensor) else i for i in token_ids]
    if not raw:
        raise ValueError("token_ids is empty; give the ids that may be generated")
    bad = [i for i in raw if isinstance(i, bool) or not isinstance(i, int) or i < 0]
    if bad:
        raise ValueError(f"token_ids must be ids >= 0; got {bad[:5]}")
    if len(set(raw)) != len(raw):
        raise ValueError("token_ids must be distinct")
    if names_in is not None:
        return dict(zip(raw, map(str, names_in))), raw
    if tokenizer is not None:
        return dict(zip(raw, tokenizer.convert_ids_to_tokens(raw))), raw
    return None, raw


def _check_fixed(fixed: Mapping[int, int] | None, length: int) -> dict[int, int]:
    """{position in 0..length-1: id} from a mapping that may use negative positions."""
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise TypeError(f"fixed must be a mapping {{position: token id}}; got {type(fixed).__name__}")
    out: dict[int, int] = {}
    for pos, tok in fixed.items():
        if isinstance(tok, bool) or not isinstance(tok, int) or tok < 0:
            raise ValueError(f"fixed[{pos!r}] must be a token id >= 0; got {tok!r}")
        if isinstance(pos, bool) or not isinstance(pos, int) or not -length <= pos < length:
            raise ValueError(f"fixed position {pos!r} is outside the {length} positions (-{length}..{length - 1})")
        index = pos % length
        if index in out:
            raise ValueError(f"fixed position {pos} is given twice (as {index} and {pos})")
        out[index] = tok
    return out


def check_int(name: str, v: Any, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an int >= {low}; got {v!r}")
