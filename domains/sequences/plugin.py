"""The DNA and RNA domains as `svdd generate` plug-ins (registered in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from svdd.runs.plugins import Domain

REQUIRES = "pip install 'svdd[sequences]'"


def _process(model: str):
    def load_process(*, steps: int | None = None, device: Any = "cpu") -> Any:
        from .pretrained import load_pretrained

        return load_pretrained(model, **({"num_steps": steps} if steps else {}), device=device)

    return load_process


def _rewards(names: tuple[str, ...]):
    def rewards() -> dict:
        from .rewards import REWARDS

        return {name: REWARDS[name] for name in names}

    return rewards


def _values(reward: str, value: str):
    def values() -> dict:
        from .pretrained import load_value

        return {reward: lambda device="cpu": load_value(value, device=device)}

    return values


def _value_net(process: Any) -> Any:
    from svdd.processes.nets import ConvValue

    return ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)


def _rna_columns(process: Any, samples: list) -> dict[str, list]:
    """The MFE structure (dot-bracket) and its free energy of each RNA sample."""
    from .rewards import RNAFold

    fold = RNAFold()
    structures, energies = [], []
    for s in samples:
        if isinstance(s, str) and s and set(s) <= set("ACGU"):
            structure, mfe = fold.fold(s)
        else:
            structure, mfe = "", float("nan")
        structures.append(structure)
        energies.append(mfe)
    return {"structure": structures, "mfe_kcal_mol": energies}


def _write_fasta(out_dir: Path, samples: list, rewards: np.ndarray, columns: dict) -> list[Path]:
    from .fasta import write_fasta

    notes = None
    if "structure" in columns:
        notes = [f"mfe={e:.2f} structure={s}" for s, e in zip(columns["structure"], columns["mfe_kcal_mol"])]
    return [write_fasta(out_dir / "samples.fasta", samples, rewards, notes=notes)]


DNA_DOMAIN = Domain(
    name="dna",
    summary="150-bp ARS1 DNA variants (masked diffusion); rewards ars1, gc, motif",
    load_process=_process("dna-ars1"),
    rewards=_rewards(("ars1", "gc", "motif")),
    values=_values("ars1", "dna-ars1-activity"),
    value_net=_value_net,
    write=_write_fasta,
    requires=REQUIRES,
    needs=("Bio", "pyjaspar"),
)

RNA_DOMAIN = Domain(
    name="rna",
    summary="miRBase hairpins, 50-100 nt (masked diffusion); rewards mfe, gc",
    load_process=_process("rna-hairpin"),
    rewards=_rewards(("mfe", "gc")),
    values=_values("mfe", "rna-hairpin-mfe"),
    value_net=_value_net,
    columns=_rna_columns,
    write=_write_fasta,
    requires=REQUIRES,
    needs=("Bio", "RNA"),
)
