"""Docking reward: AutoDock Vina on a DOCKSTRING target, offline.

The receptor (`<T>_target.pdbqt`) and box (`<T>_conf.txt`) come from the `dockstring` wheel
(58 prepared targets, Apache-2.0); Vina is the `vina` python package, and the ligand is prepared
with RDKit (protonated, ETKDG 3D embedding + MMFF) and meeko. The score is the negated best Vina
energy (kcal/mol), so HIGHER = BETTER binding. An invalid SMILES, a molecule over `MAX_ATOMS`
atoms, a ligand that cannot be prepared or docked, and a timeout all give NaN.

Reproducible by default: Vina's seed 0 means "draw a random seed", so the default is
`DEFAULT_SEED` (1), used for Vina's search and the ETKDG conformer alike. With a fixed seed the
same SMILES gets the same score in every process and whatever was docked before it (each ligand
is docked in a fresh fork of a worker holding the prepared receptor; see vina_worker.py). The
score can still change with the versions of vina, RDKit and meeko, which `Docking.settings` records.

Where docking runs: in a worker process per (target, seed) and calling process, started on first
use with `subprocess` (never a fork of the caller), which prepares the receptor maps once (about
8 s for PARP1, plus 2 s of imports) and forks one short-lived child per ligand. A timeout kills
that child only; it covers the worker's start on the first call. The worker dies with its caller
(Linux: the kernel's parent-death signal; everywhere: its request pipe closing) and is ended at
interpreter exit or by `close_workers()`.

Docking costs 0.3-15 s per ligand on one core (a worker docks one ligand at a time), so use it as
a sparse or final-step reward, and spread it over every core with a process pool (each pool
process gets its own worker):

    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        reward = Docking("PARP1", executor=pool)
        scores = reward(smiles_list)

`exhaustiveness=1` is cheap but noisy (see README / benchmarks/results/molecules_docking_noise.csv).
"""

from __future__ import annotations

import atexit
import importlib.util
import math
import numbers
import os
import threading
from concurrent.futures import Executor
from importlib import metadata
from typing import Any

from svdd.rewards import Reward

from .rewards import MAX_ATOMS, mol_from_smiles
from .tokenizer import canonical
from .vina_worker import DockingError, DockingTimeout, VinaWorker, ligand_pdbqt, target_files, target_names

__all__ = [
    "DEFAULT_SEED",
    "Docking",
    "DockingError",
    "DockingTimeout",
    "close_workers",
    "ligand_pdbqt",
    "target_files",
    "target_names",
    "vina_score",
]

DEFAULT_SEED = 1
MAX_SEED = 2**31 - 1


def check_settings(
    target: object, exhaustiveness: object, seed: object, timeout_s: object
) -> tuple[str, int, int, float | None]:
    """The docking settings, checked and normalised; an error naming the first bad one (TypeError for a
    target that is not a str, else ValueError)."""
    if not isinstance(target, str):
        raise TypeError(f"target must be a DOCKSTRING target name (str); got {target!r}")
    target_files(target)  # raises naming the accepted targets
    if isinstance(exhaustiveness, bool) or not isinstance(exhaustiveness, numbers.Integral) or exhaustiveness < 1:
        raise ValueError(
            f"exhaustiveness must be a positive int (1 is cheap and noisy, 8 is DOCKSTRING's "
            f"default); got {exhaustiveness!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(
            f"seed must be an int in 1..{MAX_SEED} (or 0: a random seed per worker, not reproducible); got {seed!r}"
        )
    if timeout_s is not None:
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, numbers.Real)
            or not math.isfinite(timeout_s)
            or timeout_s <= 0
        ):
            raise ValueError(
                f"timeout_s must be a finite number of seconds > 0, or None for no time limit; got {timeout_s!r}"
            )
        timeout_s = float(timeout_s)
    return target, int(exhaustiveness), int(seed), timeout_s


# -- workers: one per (target, seed) in this process ----------------------------------------------

_WORKERS: dict[tuple[str, int], VinaWorker] = {}
_WORKERS_LOCK = threading.Lock()


def _worker(target: str, seed: int) -> VinaWorker:
    with _WORKERS_LOCK:
        worker = _WORKERS.get((target, seed))
        if worker is None:
            worker = _WORKERS[(target, seed)] = VinaWorker(target, seed)
        return worker


def close_workers() -> None:
    """End this process's docking workers (each is restarted, receptor preparation included, on next use)."""
    with _WORKERS_LOCK:
        workers = list(_WORKERS.values())
        _WORKERS.clear()
    for worker in workers:
        worker.close()


@atexit.register
def _end_workers_at_exit() -> None:
    for worker in list(_WORKERS.values()):
        if worker.owner_pid == os.getpid():
            worker.close_now()


def _forget_workers_in_forked_child() -> None:
    """A fork of this process starts its own workers when it docks; its parent's are not its to use."""
    global _WORKERS_LOCK
    _WORKERS_LOCK = threading.Lock()
    for worker in _WORKERS.values():
        worker.forget()
    _WORKERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_in_forked_child)


def _vina_energy(smiles: object, target: str, exhaustiveness: int, seed: int, timeout_s: float | None) -> float:
    """Best Vina energy (kcal/mol) or NaN (invalid or too large a molecule, failed preparation or docking).
    Raises DockingTimeout / DockingError when there is no answer (these are not properties of the molecule)."""
    if mol_from_smiles(smiles) is None:
        return math.nan
    assert isinstance(smiles, str)
    return _worker(target, seed).dock(smiles, exhaustiveness, timeout_s)


def vina_score(
    smiles: str,
    target: str = "PARP1",
    exhaustiveness: int = 1,
    seed: int = DEFAULT_SEED,
    timeout_s: float | None = None,
) -> float:
    """Best Vina energy (kcal/mol, lower = better) of one SMILES, or NaN on any failure or timeout.

    `timeout_s`: seconds before giving up (NaN), counting the worker's start and receptor
    preparation on the first call; None waits without limit. `seed`: Vina and ETKDG seed (0 lets
    Vina draw a random one). Bad settings raise ValueError before any work.
    """
    target, exhaustiveness, seed, timeout_s = check_settings(target, exhaustiveness, seed, timeout_s)
    try:
        return _vina_energy(smiles, target, exhaustiveness, seed, timeout_s)
    except DockingError:
        return math.nan


class _NegatedVina:
    """Picklable per-item function for `Reward`: -(best Vina energy) of one SMILES; raises on a timeout."""

    def __init__(self, target: str, exhaustiveness: int, seed: int, timeout_s: float | None):
        self.target, self.exhaustiveness, self.seed, self.timeout_s = target, exhaustiveness, seed, timeout_s

    def __call__(self, smiles: object) -> float:
        return -_vina_energy(smiles, self.target, self.exhaustiveness, self.seed, self.timeout_s)


def _canonical_key(smiles: object):
    return canonical(smiles) or ("invalid", smiles if isinstance(smiles, str) else repr(smiles))


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("vina", "rdkit", "meeko", "dockstring"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class Docking(Reward):
    """Negated AutoDock Vina score (kcal/mol; HIGHER = better binding) against a DOCKSTRING target.

    Args:
        target: a DOCKSTRING target name ("PARP1", "DRD2", "EGFR", ...; `target_names()` lists them).
        exhaustiveness: Vina search effort, a positive int; 1 is cheap and noisy, 8 is DOCKSTRING's default.
        timeout_s: seconds per ligand before giving up (NaN), a finite number > 0, or None for no limit.
            The first call's includes the worker's start and receptor preparation (about 10 s).
            Can be changed later (`reward.timeout_s = 120`).
        executor: e.g. `ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))`
            to dock the molecules of a batch on every core (each pool process prepares the receptor once).
        seed: Vina and ETKDG seed, `DEFAULT_SEED` (1) by default; 0 lets Vina draw a random seed
            (not reproducible).

    Invalid SMILES and failures that belong to the molecule (no conformer, Vina rejects it) give NaN
    and are cached by canonical SMILES like scores. A timeout or a dead worker also gives NaN but is
    counted in `failures` and not cached, so a later call (say with a longer `timeout_s`) docks the
    molecule again. `settings` holds everything that decides a score, for a run record.
    """

    def __init__(
        self,
        target: str = "PARP1",
        exhaustiveness: int = 1,
        timeout_s: float | None = 60.0,
        executor: Executor | None = None,
        seed: int = DEFAULT_SEED,
    ):
        target, exhaustiveness, seed, timeout_s = check_settings(target, exhaustiveness, seed, timeout_s)
        for module in ("vina", "meeko", "rdkit"):
            if importlib.util.find_spec(module) is None:
                raise ModuleNotFoundError(f"Docking needs {module}: pip install 'svdd[molecules]'")
        seed_text = "random" if seed == 0 else str(seed)
        self._dock_fn = _NegatedVina(target, exhaustiveness, seed, timeout_s)
        super().__init__(
            self._dock_fn,
            per_item=True,
            name=f"Docking({target}, exhaustiveness={exhaustiveness}, seed={seed_text})",
            on_error="nan",
            dedupe=True,
            key=_canonical_key,
            cache=True,
            executor=executor,
            chunk_size=1 if executor is not None else None,
        )
        self.target, self.exhaustiveness, self.seed = target, exhaustiveness, seed

    @property
    def timeout_s(self) -> float | None:
        return self._dock_fn.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float | None) -> None:
        self._dock_fn.timeout_s = check_settings(self.target, self.exhaustiveness, self.seed, value)[3]

    @property
    def settings(self) -> dict[str, Any]:
        """The settings that decide the scores, and the package versions, as a JSON-able dict."""
        return {
            "target": self.target,
            "exhaustiveness": self.exhaustiveness,
            "seed": self.seed,
            "timeout_s": self.timeout_s,
            "max_atoms": MAX_ATOMS,
            "scoring_function": "vina",
            "versions": _versions(),
        }
