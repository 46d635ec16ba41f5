"""Docking reward: AutoDock Vina on a DOCKSTRING target, offline.

The receptor (`<T>_target.pdbqt`) and box (`<T>_conf.txt`) come from the `dockstring` wheel
(58 prepared targets, Apache-2.0); Vina is the `vina` python package, and the ligand is prepared
with RDKit (protonated, ETKDG 3D embedding + MMFF) and meeko. The score is the negated best Vina
energy (kcal/mol), so HIGHER = BETTER binding. Any failure (invalid SMILES, embedding failure,
a timeout) gives NaN. Results are cached by canonical SMILES.

Docking costs 0.3-15 s per ligand on one core, so use it as a sparse or final-step reward, and
spread it over every core with a process pool:

    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        reward = Docking("PARP1", executor=pool)
        scores = reward(smiles_list)

`exhaustiveness=1` is cheap but noisy (see README / benchmarks/results/molecules_docking_noise.csv).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from svdd.rewards import Reward

from .rewards import mol_from_smiles
from .tokenizer import canonical


def target_files(target: str) -> tuple[Path, dict[str, float]]:
    """(receptor PDBQT path, box {center_x, ..., size_z}) of a DOCKSTRING target, e.g. "PARP1"."""
    import importlib.util

    spec = importlib.util.find_spec("dockstring")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the docking targets come from the dockstring wheel: pip install dockstring")
    folder = Path(spec.submodule_search_locations[0]) / "resources" / "targets"
    receptor, conf = folder / f"{target}_target.pdbqt", folder / f"{target}_conf.txt"
    if not receptor.exists():
        names = sorted(p.name[: -len("_target.pdbqt")] for p in folder.glob("*_target.pdbqt"))
        raise ValueError(f"unknown docking target {target!r}; dockstring ships: {', '.join(names)}")
    box = {}
    for line in conf.read_text().splitlines():
        key, _, value = line.partition("=")
        if value.strip():
            box[key.strip()] = float(value)
    return receptor, box


def ligand_pdbqt(smiles: str, seed: int = 0) -> str | None:
    """PDBQT text of one ligand (RDKit + hydrogens, ETKDG conformer, MMFF, meeko), or None."""
    from meeko import MoleculePreparation, PDBQTWriterLegacy
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = mol_from_smiles(smiles)
    if mol is None:
        return None
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        return None
    try:
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    except Exception:
        pass
    setups = MoleculePreparation().prepare(mol)
    text, ok, _ = PDBQTWriterLegacy.write_string(setups[0])
    return text if ok else None


_VINA: dict = {}  # one prepared Vina object (receptor + maps) per process and setting


def _vina(target: str, exhaustiveness: int, seed: int):
    from vina import Vina

    key = (target, exhaustiveness, seed)
    if key not in _VINA:
        receptor, box = target_files(target)
        v = Vina(sf_name="vina", cpu=1, seed=seed, verbosity=0)
        v.set_receptor(str(receptor))
        v.compute_vina_maps(center=[box["center_x"], box["center_y"], box["center_z"]],
                            box_size=[box["size_x"], box["size_y"], box["size_z"]])
        _VINA[key] = v
    return _VINA[key]


def _dock(target: str, exhaustiveness: int, seed: int, smiles: str) -> float:
    """Best Vina energy of one SMILES in this process; NaN on any failure."""
    try:
        pdbqt = ligand_pdbqt(smiles, seed)
        if pdbqt is None:
            return float("nan")
        v = _vina(target, exhaustiveness, seed)
        v.set_ligand_from_string(pdbqt)
        v.dock(exhaustiveness=exhaustiveness, n_poses=1)
        return float(v.energies(n_poses=1)[0][0])
    except Exception:
        return float("nan")


def _dock_worker(target: str, exhaustiveness: int, seed: int, smiles: str, conn) -> None:
    conn.send(_dock(target, exhaustiveness, seed, smiles))


def vina_score(smiles: str, target: str = "PARP1", exhaustiveness: int = 1, seed: int = 0,
               timeout_s: float | None = None) -> float:
    """Best Vina energy (kcal/mol, lower = better) of one SMILES, or NaN on any failure.

    With `timeout_s`, docking runs in a forked child process that is killed after that many
    seconds (NaN). Without it, it runs in this process (reusing the receptor maps).
    """
    if mol_from_smiles(smiles) is None:
        return float("nan")
    if timeout_s is None:
        return _dock(target, exhaustiveness, seed, smiles)
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    _vina(target, exhaustiveness, seed)  # maps once in the parent; the fork inherits them
    proc = ctx.Process(target=_dock_worker, args=(target, exhaustiveness, seed, smiles, child), daemon=True)
    proc.start()
    child.close()
    value = float("nan")
    if parent.poll(timeout_s):
        try:
            value = parent.recv()
        except EOFError:
            pass
    if proc.is_alive():
        proc.kill()
    proc.join()
    parent.close()
    return value


class _DockBatch:
    """Picklable batch function for `Reward`: negated Vina scores of a list of SMILES."""

    def __init__(self, target: str, exhaustiveness: int, seed: int, timeout_s: float | None):
        self.target, self.exhaustiveness, self.seed, self.timeout_s = target, exhaustiveness, seed, timeout_s

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        return np.array([-vina_score(s, self.target, self.exhaustiveness, self.seed, self.timeout_s)
                         for s in smiles])


def _canonical_key(smiles: object):
    return canonical(smiles) or ("invalid", smiles if isinstance(smiles, str) else repr(smiles))


class Docking(Reward):
    """Negated AutoDock Vina score (kcal/mol; HIGHER = better binding) against a DOCKSTRING target.

    Args:
        target: a DOCKSTRING target name ("PARP1", "DRD2", "EGFR", ...).
        exhaustiveness: Vina search effort; 1 is cheap and noisy, 8 is DOCKSTRING's default.
        timeout_s: seconds per ligand before giving up (NaN); None waits forever.
        executor: e.g. `ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))`
            to dock chunks of a batch on every core (each worker prepares the receptor once).
        seed: Vina and ETKDG seed.

    Invalid SMILES and any failure give NaN. Scores are cached by canonical SMILES.
    """

    def __init__(self, target: str = "PARP1", exhaustiveness: int = 1, timeout_s: float | None = 60.0,
                 executor: Executor | None = None, seed: int = 0):
        target_files(target)  # fail early on an unknown target / missing wheel
        if not isinstance(exhaustiveness, int) or exhaustiveness < 1:
            raise ValueError(f"exhaustiveness must be a positive int; got {exhaustiveness!r}")
        super().__init__(_DockBatch(target, exhaustiveness, seed, timeout_s), name=f"Docking({target})",
                         on_error="nan", dedupe=True, key=_canonical_key, cache=True, executor=executor,
                         chunk_size=1 if executor is not None else None)
        self.target, self.exhaustiveness, self.timeout_s = target, exhaustiveness, timeout_s
