"""Reward functions: the protocol, a checked way to call them, and helpers to build them.

A *reward* is any callable ``reward(objects: list) -> scores`` that returns one float per
object (a list, a 1-D numpy array or a 1-D torch tensor of length ``len(objects)``). Rewards
are always maximised. Objects may be anything the sampler decodes to: strings, tuples, numpy
arrays, torch tensors, PIL images. The reward gets its own copy of the list (mutating it does
not disturb the sampler) and must not modify the objects in it.

Scores, everywhere in svdd (selection, Best-of-N, SVDD-R, SMC weights, `Result.summary`, run
tables and their `invalid_samples` count):

* NaN (or None in a list or object array) marks an invalid object (an unparseable molecule,
  say). It is a score, not an error, never stops a batch, and never wins over a valid score.
* +inf is a valid score, the best possible: it wins every selection; several +inf candidates
  tie (the first is kept at alpha = 0, one is drawn uniformly at alpha > 0); run tables write
  it as ``inf``. A Python int too large for a float (``10**400``) is +inf (-inf if negative).
* -inf is a valid score that loses to every finite score (it still beats NaN).

Only NaN counts as invalid. Summaries (median, mean, p90) are over the valid scores, infinities
included; the mean is NaN when both +inf and -inf occur. Combining rewards follows IEEE
arithmetic: +inf plus -inf (`WeightedSum` of two terms) is NaN; a zero weight or scale times an
infinite score is 0.

The sampler calls every reward through `evaluate`, which checks the output and, when the
reward raises, finds and names the object it raised on. `Reward` wraps a user function with
the usual batching policies (scoring failures as NaN, deduplication, a cross-call cache,
parallel chunks on an executor). `WeightedSum`, `Transformed`, `negated`, `scaled` and
`clipped` combine rewards, and `TorchReward` is a differentiable reward for gradient-guided
baselines.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from typing import Any, NoReturn

import numpy as np
import torch

__all__ = [
    "Reward",
    "RewardError",
    "TorchReward",
    "Transformed",
    "WeightedSum",
    "clipped",
    "evaluate",
    "is_differentiable",
    "negated",
    "reward_name",
    "scaled",
]

RewardFn = Callable[[list], Any]
_ACCEPTED = (
    "a list of floats, a 1-D numpy array or a 1-D torch tensor with one value per "
    "object (NaN or None for an invalid object)"
)


class RewardError(RuntimeError):
    """A reward raised, or returned something that is not one float per object."""


def reward_name(reward: Any) -> str:
    """``reward.name`` if it is a str, else the function's ``__qualname__``, else the class name."""
    name = getattr(reward, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(reward, functools.partial):
        return reward_name(reward.func)
    for attr in ("__qualname__", "__name__"):
        name = getattr(reward, attr, None)
        if isinstance(name, str):
            return name
    return type(reward).__name__


def _short_repr(obj: Any, limit: int = 200) -> str:
    """``repr(obj)`` on one line, cut to about `limit` characters."""
    try:
        text = re.sub(r"\s+", " ", repr(obj))
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_float(value: Any) -> float:
    """One score as a float: None -> NaN; numbers, 0-d or one-element arrays/tensors -> float."""
    if value is None:
        return math.nan
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.dtype.is_complex if isinstance(value, torch.Tensor) else value.dtype.kind == "c":
            raise TypeError("complex score")
        if value.size == 1 if isinstance(value, np.ndarray) else value.numel() == 1:
            return float(value.item())
        raise TypeError(f"element of shape {tuple(value.shape)}")
    if isinstance(value, (numbers.Real, np.bool_)):  # bool and numpy real scalars too
        try:
            return float(value)
        except OverflowError:  # a Python int (or Fraction) beyond float range: +-inf by its sign
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]  # Real compares with 0
    raise TypeError(f"element of type {type(value).__name__}")


def _as_scores(out: Any, n: int, name: str) -> np.ndarray:
    """Check a reward output and return it as a fresh float64 array of shape [n]."""
    if out is None:
        raise RewardError(f"reward {name!r} returned None (missing return?); expected {_ACCEPTED}")
    try:
        if isinstance(out, torch.Tensor):
            if out.is_complex():
                raise TypeError("complex tensor")
            arr = out.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
        elif isinstance(out, (list, tuple)):
            arr = np.array([_to_float(v) for v in out], dtype=np.float64)
        else:
            arr = np.asarray(out)
            if arr.dtype.kind == "O":  # e.g. floats with None for invalid objects
                arr = np.array([_to_float(v) for v in arr.ravel()], dtype=np.float64).reshape(arr.shape)
            elif arr.dtype.kind not in "biuf":
                raise TypeError(f"dtype {arr.dtype}")
            arr = np.array(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RewardError(
            f"reward {name!r} returned {type(out).__name__} ({exc}), which is not convertible "
            f"to float; expected {_ACCEPTED}"
        ) from None
    if arr.ndim == 1 and arr.shape[0] == n:
        return arr
    if arr.ndim == 0:
        got, hint = "a scalar", "; for a function of one object use Reward(fn, per_item=True)"
    elif arr.ndim == 1:
        got, hint = f"{arr.shape[0]} values", ""
    else:
        got, hint = f"an array of shape {arr.shape}", "; it must be 1-D (squeeze it?)"
    raise RewardError(f"reward {name!r} returned {got} for {n} objects{hint}")


def evaluate(reward: Callable[[list], Any], objects: Sequence) -> np.ndarray:
    """Score `objects` with `reward` and check the result: float64 array of shape [len(objects)].

    An empty `objects` returns an empty array without calling the reward. If the reward
    raises, it is run again on one object at a time to find the first object it raises on,
    and a `RewardError` naming the reward and that object is raised (chained to the original
    exception). Only `Exception` is caught, so KeyboardInterrupt still stops the run.
    """
    if not callable(reward):
        raise TypeError(f"a reward must be callable; got {type(reward).__name__}")
    objects = list(objects)
    if not objects:
        return np.zeros(0, dtype=np.float64)
    name = reward_name(reward)
    given = list(objects)  # the reward's own copy: if it mutates the list, ours is intact
    try:
        out = reward(given)
    except RewardError:
        raise  # already says what went wrong (e.g. a wrapped reward's bad output)
    except (Exception, SystemExit) as batch_exc:  # a reward calling sys.exit is a failing reward too
        _locate_failure(reward, name, objects, batch_exc)
        raise  # unreachable: _locate_failure always raises
    try:
        return _as_scores(out, len(objects), name)
    except RewardError as exc:
        if len(given) != len(objects) or any(a is not b for a, b in zip(given, objects)):
            raise RewardError(
                f"{exc} (it also changed the list it was given: {len(objects)} objects "
                f"before the call, {len(given)} after; a reward must not modify its input)"
            ) from None
        raise


def _locate_failure(reward: Callable, name: str, objects: list, batch_exc: BaseException) -> NoReturn:
    """Re-run `reward` one object at a time and raise a RewardError naming the culprit."""
    if isinstance(reward, Reward):
        fix = "pass on_error='nan' to this Reward to score failures as NaN instead"
    else:
        fix = "wrap it in svdd.rewards.Reward(fn, on_error='nan') to score failures as NaN instead"
    for i, obj in enumerate(objects):
        try:
            reward([obj])
        except (Exception, SystemExit) as exc:
            raise RewardError(
                f"reward {name!r} raised {type(exc).__name__}: {exc} on object {i} ({_short_repr(obj)}); {fix}"
            ) from exc
    raise RewardError(
        f"reward {name!r} raised {type(batch_exc).__name__}: {batch_exc} on a batch of "
        f"{len(objects)} objects, but on none of them alone, so it depends on the batch "
        f"(size {len(objects)}, e.g. memory); {fix}"
    ) from batch_exc


# ----------------------------------------------------------------------------- Reward wrapper


def _auto_key(obj: Any) -> Hashable | None:
    """A hashable identity for `obj`, or None when it has none (then it is never deduplicated).

    Tensors and arrays compare by (dtype, shape, bytes), PIL images by (mode, size, pixels),
    lists and tuples element-wise, other hashable objects as themselves.
    """
    try:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
            return ("tensor", str(t.dtype), tuple(t.shape), data)
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind == "O":  # bytes of an object array are pointers
                return None
            return ("ndarray", obj.dtype.str, obj.shape, np.ascontiguousarray(obj).tobytes())
        if type(obj).__module__.startswith("PIL.") and hasattr(obj, "tobytes"):
            return ("image", obj.mode, tuple(obj.size), obj.tobytes())
        if isinstance(obj, (list, tuple)):
            keys = tuple(_auto_key(x) for x in obj)
            return None if any(k is None for k in keys) else (type(obj).__name__, keys)
        hash(obj)
        return ("=", obj)
    except Exception:  # unhashable, sparse tensors, exotic objects: no identity
        return None


def _score_chunk(
    fn: Callable, per_item: bool, penalty: float | None, name: str, chunk: list
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Score one chunk; module-level so that process pools can pickle it.

    Returns (scores [m], failed [m] bool, objects passed to fn, fn invocations). With
    ``penalty=None`` exceptions from `fn` propagate; otherwise failing objects get `penalty`.
    """
    m = len(chunk)
    scores, failed = np.full(m, np.nan), np.zeros(m, dtype=bool)
    calls = batches = 0
    if not per_item:
        calls, batches = m, 1
        try:
            out = fn(list(chunk))
        except (Exception, SystemExit):  # sys.exit in a reward fails that item
            if penalty is None:
                raise
            if m == 1:
                scores[0], failed[0] = penalty, True
                return scores, failed, calls, batches
        else:
            return _as_scores(out, m, name), failed, calls, batches
    for i, obj in enumerate(chunk):  # per-item functions, or a failed batch under a penalty
        calls, batches = calls + 1, batches + 1
        try:
            out = fn(obj) if per_item else fn([obj])
        except (Exception, SystemExit):  # sys.exit in a reward fails that item
            if penalty is None:
                raise
            scores[i], failed[i] = penalty, True
            continue
        if per_item:
            try:
                scores[i] = _to_float(out)
            except (TypeError, ValueError):
                raise RewardError(
                    f"per-item reward {name!r} returned {type(out).__name__}; "
                    "expected one float (or None for an invalid object)"
                ) from None
        else:
            scores[i] = _as_scores(out, 1, name)[0]
    return scores, failed, calls, batches


class Reward:
    """A user scoring function with a batching policy; calling it returns float64 scores [n].

    Args:
        fn: ``fn(list_of_objects) -> scores`` (one per object), or with ``per_item=True``
            ``fn(obj) -> float``. With a process pool executor, `fn` must be picklable (a
            module-level function or an instance of a module-level class, not a lambda).
        name: display name; defaults to ``reward_name(fn)``.
        on_error: ``"raise"`` lets exceptions from `fn` propagate (`evaluate` then names the
            object); ``"nan"`` or a number re-scores a failing batch one object at a time and
            gives the objects that raise NaN or that number. Returned NaN/inf are kept as is.
        dedupe: score identical objects of one call once. Identity is ``key(obj)`` if given
            (e.g. a canonical SMILES), else automatic: hashable objects as themselves, arrays
            and tensors by (dtype, shape, bytes), PIL images by (mode, size, pixels), lists
            element-wise; other unhashable objects are always scored.
        key: optional ``obj -> hashable`` identity used by `dedupe` and `cache`.
        cache: remember scores across calls by key (unbounded; clear with `clear_cache`).
            Objects that raised under a penalty policy are not cached.
        executor: a `concurrent.futures.Executor`; chunks are scored with ``executor.map``.
        chunk_size: objects per `fn` call. Default: all at once, or with an executor
            ``ceil(n / max_workers)`` (4 workers assumed if unknown).
        per_item: `fn` takes one object and returns one float.

    Counters: `calls` (objects passed to fn), `batches` (fn invocations), `cache_hits`,
    `failures` (objects that raised under a penalty policy). The counters and the cache are
    not thread-safe: do not call one Reward from several threads at once.
    """

    def __init__(
        self,
        fn: Callable,
        *,
        name: str | None = None,
        on_error: str | float = "raise",
        dedupe: bool = True,
        key: Callable[[Any], Hashable] | None = None,
        cache: bool = False,
        executor: Executor | None = None,
        chunk_size: int | None = None,
        per_item: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"Reward fn must be callable; got {type(fn).__name__}")
        if on_error == "raise":
            penalty = None
        elif on_error == "nan":
            penalty = math.nan
        elif isinstance(on_error, numbers.Real) and not isinstance(on_error, bool) and on_error != math.inf:
            penalty = float(on_error)
        else:
            raise ValueError(
                "on_error must be 'raise', 'nan' or a number below +inf (a failure scored +inf "
                f"would win every selection); got {on_error!r}"
            )
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive int or None; got {chunk_size!r}")
        if executor is not None and not (isinstance(executor, Executor) or callable(getattr(executor, "map", None))):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor (or have a .map method); got {type(executor).__name__}"
            )
        if key is not None and not callable(key):
            raise TypeError(f"key must be callable or None; got {type(key).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None; got {type(name).__name__}")
        self.fn, self.on_error, self.dedupe, self.key = fn, on_error, bool(dedupe), key
        self.cache, self.executor, self.per_item = bool(cache), executor, bool(per_item)
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self._penalty = penalty
        self._name = name if name is not None else reward_name(fn)
        self._cache: dict[Hashable, float] = {}
        self.reset_counters()

    @property
    def name(self) -> str:
        return self._name

    def reset_counters(self) -> None:
        """Set `calls`, `batches`, `cache_hits` and `failures` to zero."""
        self.calls = self.batches = self.cache_hits = self.failures = 0

    def clear_cache(self) -> None:
        """Forget all cached scores."""
        self._cache.clear()

    def _key_of(self, obj: Any) -> Hashable | None:
        if self.key is None:
            return _auto_key(obj)
        try:
            return _auto_key(self.key(obj))
        except Exception:
            if self._penalty is None:
                raise
            return None  # under a penalty policy, an object the key chokes on is just scored

    def __call__(self, objects: Sequence) -> np.ndarray:
        """Scores of `objects`: float64 array [len(objects)]."""
        objects = list(objects)
        n = len(objects)
        keyed = self.dedupe or self.cache
        keys = [self._key_of(o) for o in objects] if keyed else [None] * n
        scores = np.full(n, np.nan)
        source = list(range(n))  # source[i] = index whose score i copies
        first: dict[Hashable, int] = {}
        pending: list[int] = []
        for i, k in enumerate(keys):
            if k is not None and self.cache and k in self._cache:
                scores[i], source[i] = self._cache[k], -1
                self.cache_hits += 1
                continue
            if k is not None and self.dedupe:
                source[i] = first.setdefault(k, i)
                if source[i] != i:
                    continue
            pending.append(i)
        values, failed = self._score([objects[i] for i in pending])
        scores[pending] = values
        for i, j in enumerate(source):
            if j >= 0 and j != i:
                scores[i] = scores[j]
        if self.cache:
            for i, bad in zip(pending, failed):
                if keys[i] is not None and not bad:
                    self._cache[keys[i]] = float(scores[i])
        return scores

    def _score(self, objects: list) -> tuple[np.ndarray, np.ndarray]:
        """Run `fn` on `objects` in chunks (serially or on the executor)."""
        m = len(objects)
        if m == 0:
            return np.zeros(0), np.zeros(0, dtype=bool)
        size = self.chunk_size
        if size is None:
            workers = getattr(self.executor, "_max_workers", None) or 4
            size = math.ceil(m / workers) if self.executor is not None else m
        chunks = [objects[s : s + size] for s in range(0, m, size)]
        args = (self.fn, self.per_item, self._penalty, self._name)
        if self.executor is None:
            results = [_score_chunk(*args, c) for c in chunks]
        else:
            repeat = [[a] * len(chunks) for a in args]
            results = list(self.executor.map(_score_chunk, *repeat, chunks))
        for _, failed, calls, batches in results:
            self.calls += calls
            self.batches += batches
            self.failures += int(failed.sum())
        return (np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]))

    def __repr__(self) -> str:
        opts = {
            "on_error": self.on_error,
            "dedupe": self.dedupe,
            "cache": self.cache,
            "key": self.key and reward_name(self.key),
            "chunk_size": self.chunk_size,
            "executor": self.executor and type(self.executor).__name__,
            "per_item": self.per_item or None,
        }
        text = ", ".join(f"{k}={v!r}" for k, v in opts.items() if v is not None)
        return (
            f"Reward({self._name!r}, {text}; calls={self.calls}, batches={self.batches}, "
            f"cache_hits={self.cache_hits}, failures={self.failures})"
        )


# ------------------------------------------------------------------------------ composition


class WeightedSum:
    """``sum_i w_i * r_i(objects)``; an object that is NaN under any term is NaN.

    Example: ``WeightedSum([(qed, 1.0), (sa, -0.5)])``. Each term is called through
    `evaluate`, so a failing term is named in the error.
    """

    def __init__(self, terms: Sequence[tuple[Callable, float]], name: str | None = None) -> None:
        terms = list(terms)
        if not terms:
            raise ValueError("WeightedSum needs at least one (reward, weight) term")
        for term in terms:
            if not (
                isinstance(term, tuple)
                and len(term) == 2
                and callable(term[0])
                and isinstance(term[1], numbers.Real)
                and not isinstance(term[1], bool)
            ):
                raise TypeError(f"WeightedSum terms must be (reward, weight) pairs; got {term!r}")
            if not math.isfinite(term[1]):
                raise ValueError(
                    f"WeightedSum weights must be finite numbers; got {term[1]!r} for {reward_name(term[0])!r}"
                )
        self.terms = [(r, float(w)) for r, w in terms]
        if name is None:
            parts = [f"{abs(w)!r}*{reward_name(r)}" for r, w in self.terms]
            name = ("-" if self.terms[0][1] < 0 else "") + parts[0]
            for (_, w), part in zip(self.terms[1:], parts[1:]):
                name += (" - " if w < 0 else " + ") + part
        self.name = name

    def __call__(self, objects: Sequence) -> np.ndarray:
        objects = list(objects)
        total = np.zeros(len(objects))
        for reward, weight in self.terms:
            with np.errstate(invalid="ignore"):  # +inf + -inf is NaN, as documented
                total += _times(weight, evaluate(reward, objects))
        return total

    def __repr__(self) -> str:
        return f"WeightedSum({self.name!r})"


class Transformed:
    """``fn(reward(objects))`` for an elementwise ``fn: ndarray[n] -> ndarray[n]``."""

    def __init__(self, reward: Callable, fn: Callable[[np.ndarray], np.ndarray], name: str | None = None) -> None:
        if not (callable(reward) and callable(fn)):
            raise TypeError("Transformed needs a callable reward and a callable fn")
        self.reward, self.fn = reward, fn
        self.name = name if name is not None else f"{reward_name(fn)}({reward_name(reward)})"

    def __call__(self, objects: Sequence) -> np.ndarray:
        objects = list(objects)
        return _as_scores(self.fn(evaluate(self.reward, objects)), len(objects), self.name)

    def __repr__(self) -> str:
        return f"Transformed({self.name!r})"


def _times(weight: float, scores: np.ndarray) -> np.ndarray:
    """weight · scores, with 0 · ±inf = 0 (a zero weight ignores a score; NaN stays NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        product = weight * scores
    return np.where(np.isinf(scores) & (weight == 0), 0.0, product)


def _finite(name: str, value: Any, accepted: str = "a finite number") -> float:
    """`value` as a float when it is a finite number; a clear TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {accepted}; got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {accepted}; got {value!r}")
    return float(value)


def negated(reward: Callable) -> Transformed:
    """``-reward``: for oracles where lower is better (docking energies, SA score)."""
    return Transformed(reward, np.negative, name=f"-{reward_name(reward)}")


def scaled(reward: Callable, scale: float = 1.0, offset: float = 0.0) -> Transformed:
    """``scale * reward + offset`` (a zero scale maps ±inf to the offset too)."""
    scale, offset = _finite("scaled: scale", scale), _finite("scaled: offset", offset)
    name = f"{scale:g}*{reward_name(reward)}" + (f" + {offset:g}" if offset else "")
    return Transformed(reward, lambda v: _times(scale, v) + offset, name=name)


def clipped(reward: Callable, low: float | None = None, high: float | None = None) -> Transformed:
    """`reward` clipped to ``[low, high]`` (either bound may be None); NaN stays NaN, ±inf go to the bounds."""
    bound = "a finite number or None"
    lo_bound = None if low is None else _finite("clipped: low", low, bound)
    hi_bound = None if high is None else _finite("clipped: high", high, bound)
    if lo_bound is not None and hi_bound is not None and lo_bound > hi_bound:
        raise ValueError(f"clipped: low={low} is above high={high}")
    lo: float = -np.inf if lo_bound is None else lo_bound
    hi: float = np.inf if hi_bound is None else hi_bound
    return Transformed(reward, lambda v: np.clip(v, lo, hi), name=f"clip({reward_name(reward)}, {low}, {high})")


# ---------------------------------------------------------------------------- differentiable


class TorchReward:
    """A differentiable reward ``fn(x: Tensor[n, ...]) -> Tensor[n]`` for gradient guidance.

    `tensor(x)` keeps the autograd graph; calling it on a list of objects (tensors, arrays or
    numbers of one shape) stacks them into one float tensor [n, ...] on `device` (if given)
    and returns float64 numpy scores [n] computed without gradients.
    """

    differentiable = True

    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        name: str | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"TorchReward fn must be callable; got {type(fn).__name__}")
        self.fn, self.device = fn, device
        self.name = name if name is not None else reward_name(fn)

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Scores [n] of the batch `x` [n, ...], differentiable with respect to `x`."""
        out = self.fn(x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0],):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise RewardError(
                f"TorchReward {self.name!r} must return a tensor of shape "
                f"[{x.shape[0]}] for an input of shape {tuple(x.shape)}; got {got}"
            )
        return out

    def __call__(self, objects: Sequence) -> np.ndarray:
        objects = list(objects)
        if not objects:
            return np.zeros(0, dtype=np.float64)
        items = []
        for i, o in enumerate(objects):
            try:
                items.append(torch.as_tensor(o))
            except (TypeError, ValueError, RuntimeError):
                raise RewardError(
                    f"TorchReward {self.name!r} needs tensors, arrays or numbers; object {i} is {_short_repr(o)}"
                ) from None
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1:
            raise RewardError(
                f"TorchReward {self.name!r} needs objects of one shape to stack; got shapes {sorted(shapes)[:4]}"
            )
        x = torch.stack([t if t.is_floating_point() else t.to(torch.get_default_dtype()) for t in items])
        if self.device is not None:
            x = x.to(self.device)
        with torch.no_grad():
            out = self.tensor(x)
        return out.detach().to(device="cpu", dtype=torch.float64).numpy()

    def __repr__(self) -> str:
        return f"TorchReward({self.name!r})"


def is_differentiable(reward: Any) -> bool:
    """True for a `TorchReward` or any object whose ``differentiable`` attribute is True."""
    return isinstance(reward, TorchReward) or getattr(reward, "differentiable", False) is True
