"""Reward and decode work cut to what is needed: de-duplication and bounded caches.

SVDD-PM scores N·M candidates at every step, and many of them are the same object (children
that unmask nothing, kept states whose estimate does not change, different token rows that decode
to one molecule). `svdd.sample(reward_cache=...)` therefore scores every distinct object once per
call of the reward and remembers the scores of the last `size` distinct objects across steps:

* `RewardCache` holds scores by (reward, object key), least recently used dropped first. Pass one
  as `reward_cache=` to share it across `svdd.sample` calls; an int makes a fresh one per call.
* `DecodeCache` holds decoded objects by a digest of the state's bytes, for discrete (integer or
  bool) states only: continuous states practically never repeat, and a batch decoder (a VAE) may
  round differently on a smaller batch, so their decoding is left as it is.

Keys (`object_key`): a reward's own `key(obj)` when it has a callable `key` attribute (e.g. a
canonical SMILES); else strings, bytes and numbers as themselves, tuples and lists element-wise,
tensors, arrays and PIL images by dtype/mode, shape and a 128-bit BLAKE2b digest of their bytes.
Other objects have no key and are scored every time.

Results stay exact for rewards that are functions of the object alone (the contract of a reward):
a cached score is the float the reward returned for that object. A reward that is random on
purpose (a noisy oracle) should set `cacheable = False`, or the run `reward_cache=0`. A NaN
score (an invalid object, or a transient failure such as a docking timeout) is shared within one
batch but never cached, so a later step scores that object again.

Memory: an entry holds its key and a float (rewards) or the decoded object (decodes). Full at the
default 65,536 entries each with 60-character strings (SMILES), the two caches hold about 30 MB
(measured with tracemalloc: 11 MB of scores keyed by the strings themselves, 16 MB of decoded
strings keyed by 16-byte digests); tensor and image objects are keyed by digests too, so their
score entries stay small, and their (continuous) states are never decode-cached.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch

from ..rewards import evaluate

DEFAULT_CACHE_SIZE = 65_536
"""Entries per cache in `svdd.sample` unless `reward_cache=` says otherwise."""

_MISSING = object()
_SCALARS = (str, bytes, bool, int, float, complex, type(None), np.generic)


class LRU:
    """A mapping bounded to `size` entries that drops the least recently used one first."""

    def __init__(self, size: int):
        self.size: int = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value under `key` (now the most recently used), else `default`."""
        try:
            self._data.move_to_end(key)
        except KeyError:
            return default
        return self._data[key]

    def put(self, key: Hashable, value: Any) -> None:
        """Store `value` under `key`, dropping the least recently used entries beyond `size`."""
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


def _digest(data: bytes | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def object_key(obj: Any) -> Hashable | None:
    """A hashable identity of a decoded object, or None when it has none (see the module docstring)."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, _SCALARS):
        if isinstance(obj, (float, np.floating)) and math.isnan(obj):
            return None  # NaN != NaN: no identity
        return (type(obj).__name__, obj)
    if isinstance(obj, (tuple, list)):
        if all(isinstance(item, _SCALARS) for item in obj):  # e.g. a token tuple: one short digest
            return (type(obj).__name__, _digest(repr(obj).encode()))
        keys = tuple(object_key(item) for item in obj)
        return None if any(k is None for k in keys) else (type(obj).__name__, keys)
    if isinstance(obj, torch.Tensor):
        if obj.is_sparse or obj.requires_grad:
            return None
        t = obj.detach().cpu().contiguous()
        return ("tensor", str(t.dtype), tuple(t.shape), _digest(t.reshape(-1).view(torch.uint8).numpy().tobytes()))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "O":  # an object array's bytes are pointers
            return None
        return ("ndarray", obj.dtype.str, obj.shape, _digest(np.ascontiguousarray(obj).tobytes()))
    if type(obj).__module__.startswith("PIL.") and hasattr(obj, "tobytes"):
        return ("image", obj.mode, tuple(obj.size), _digest(obj.tobytes()))
    return None


def reward_key(reward: Callable, obj: Any) -> Hashable | None:
    """`object_key(reward.key(obj))` when the reward has a callable `key`, else `object_key(obj)`;
    None (no identity: always scored) when the reward's key raises."""
    key_fn = getattr(reward, "key", None)
    if callable(key_fn):
        try:
            return object_key(key_fn(obj))
        except Exception:
            return None
    return object_key(obj)


class RewardCache:
    """Reward scores by (reward, object key), at most `size` of them (least recently used dropped).

    `score(reward, objects)` scores each distinct uncached object once and returns the scores of
    all of them. One cache may serve several rewards (each has its own keys) and several
    `svdd.sample` calls (pass it as `reward_cache=`); it keeps a reference to every reward it has
    scored for, so their identities stay unique. Safe to share between threads (the reward itself is
    called outside the lock). `hits` and `misses` count objects over the cache's life.
    """

    def __init__(self, size: int = DEFAULT_CACHE_SIZE):
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"RewardCache size must be an integer >= 1 (entries); got {size!r}")
        self.size: int = int(size)
        self._scores: LRU = LRU(self.size)
        self._rewards: dict[int, Callable] = {}
        self._lock: threading.Lock = threading.Lock()
        self.hits: int = 0
        self.misses: int = 0

    def __len__(self) -> int:
        return len(self._scores)

    def clear(self) -> None:
        """Forget every score."""
        with self._lock:
            self._scores.clear()
            self._rewards.clear()

    def score(self, reward: Callable, objects: Sequence[Any]) -> tuple[np.ndarray, int, int]:
        """(scores float64 [n], objects passed to the reward, objects answered without it).

        The reward sees each distinct uncached object once, in order of first appearance (objects
        without a key each time); `svdd.rewards.evaluate` checks its output and names the object
        it raised on. A reward with `cacheable = False` is called on all objects as given.
        """
        objects = list(objects)
        n = len(objects)
        if getattr(reward, "cacheable", True) is False:
            return evaluate(reward, objects), n, 0
        owner = id(reward)
        keys = [reward_key(reward, obj) for obj in objects]
        out = np.empty(n, dtype=np.float64)
        todo: dict[Hashable, list[int]] = {}  # key -> rows waiting for its score
        unkeyed: list[int] = []
        with self._lock:
            self._rewards.setdefault(owner, reward)
            for i, key in enumerate(keys):
                if key is None:
                    unkeyed.append(i)
                    continue
                cached = self._scores.get((owner, key), _MISSING)
                if cached is not _MISSING:
                    out[i] = cached
                elif key in todo:
                    todo[key].append(i)
                else:
                    todo[key] = [i]
        firsts = sorted([rows[0] for rows in todo.values()] + unkeyed)
        scores = evaluate(reward, [objects[i] for i in firsts])
        fresh: dict[int, float] = dict(zip(firsts, scores.tolist()))
        with self._lock:
            for key, rows in todo.items():
                value = fresh[rows[0]]
                out[rows] = value
                if not math.isnan(value):
                    self._scores.put((owner, key), value)
            self.hits += n - len(firsts)
            self.misses += len(firsts)
        for i in unkeyed:
            out[i] = fresh[i]
        return out, len(firsts), n - len(firsts)

    def __repr__(self) -> str:
        return f"RewardCache(size={self.size}, entries={len(self)}, hits={self.hits}, misses={self.misses})"


class DecodeCache:
    """Decoded objects of discrete states by a digest of each state's bytes, at most `size` of them.

    `decode(states, fn)` calls `fn` (the process's decode, which must return one object per state) on
    the distinct undecoded rows only and returns (objects, rows decoded, rows answered without
    decoding). Floating-point states are passed to `fn` whole (see the module docstring). A cached
    object is returned as is (the same object for equal states), so a decode should return immutable
    objects (strings, tuples) or objects that no one modifies.
    """

    def __init__(self, size: int = DEFAULT_CACHE_SIZE):
        self.size: int = size
        self._objects = LRU(size)

    def __len__(self) -> int:
        return len(self._objects)

    def decode(self, states: torch.Tensor, fn: Callable[[torch.Tensor], Sequence[Any]]) -> tuple[list[Any], int, int]:
        n = states.shape[0]
        if states.is_floating_point() or states.is_complex() or n == 0:
            return list(fn(states)), n, 0
        rows = states.detach().cpu().contiguous().reshape(n, -1).numpy()
        prefix = hashlib.blake2b(f"{rows.dtype.str}{tuple(states.shape[1:])}".encode(), digest_size=16)
        objects: list[Any] = [None] * n
        todo: dict[bytes, list[int]] = {}
        for i in range(n):
            h = prefix.copy()
            h.update(rows[i].tobytes())
            key = h.digest()
            cached = self._objects.get(key, _MISSING)
            if cached is not _MISSING:
                objects[i] = cached
            elif key in todo:
                todo[key].append(i)
            else:
                todo[key] = [i]
        if todo:
            firsts = [group[0] for group in todo.values()]
            subset = states if len(firsts) == n else states[torch.tensor(firsts, device=states.device)]
            decoded = list(fn(subset))
            for (key, group), obj in zip(todo.items(), decoded):
                self._objects.put(key, obj)
                for i in group:
                    objects[i] = obj
        return objects, len(todo), n - len(todo)
