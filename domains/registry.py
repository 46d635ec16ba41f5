"""Domains by name, for the command line: their pretrained processes, rewards and value networks.

    svdd generate dna --reward ars1 ...          # a shipped reward by name
    svdd generate rna --reward mfe=ensemble ...  # name=argument
    svdd generate images --reward mypkg.rewards:sharpness ...   # any module:callable

Everything here is looked up by strings, so a `DomainJob` pickles cheaply to worker processes,
which build the model themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def _images_process(steps: int | None):
    from svdd.domains.images import make_process

    return make_process(num_inference_steps=steps or 50)


def _dna_process(steps: int | None):
    from svdd.domains.sequences import load_pretrained

    return load_pretrained("dna-ars1", **({"num_steps": steps} if steps else {}))


def _rna_process(steps: int | None):
    from svdd.domains.sequences import load_pretrained

    return load_pretrained("rna-hairpin", **({"num_steps": steps} if steps else {}))


def _molecules_process(steps: int | None):
    from svdd.domains.molecules import load_pretrained

    return load_pretrained("moses-selfies", **({"num_steps": steps} if steps else {}))


def _images_rewards() -> dict[str, Callable[[str | None], Any]]:
    from svdd.domains.images import ClassifierReward, JPEGCompressibility

    return {"jpeg": lambda arg: JPEGCompressibility(), "classifier": lambda arg: ClassifierReward(arg or "sneaker")}


def _dna_rewards() -> dict[str, Callable[[str | None], Any]]:
    from svdd.domains.sequences import ARS1Activity, GCContent, MotifScore

    return {"ars1": lambda arg: ARS1Activity(), "gc": lambda arg: GCContent(),
            "motif": lambda arg: MotifScore(arg) if arg else MotifScore()}


def _rna_rewards() -> dict[str, Callable[[str | None], Any]]:
    from svdd.domains.sequences import GCContent, RNAFold

    return {"mfe": lambda arg: RNAFold(ensemble=arg == "ensemble"), "gc": lambda arg: GCContent()}


def _molecules_rewards() -> dict[str, Callable[[str | None], Any]]:
    from svdd.domains.molecules import QED, SA, Docking, LogP

    return {"qed": lambda arg: QED(), "sa": lambda arg: SA(raw=arg == "raw"), "logp": lambda arg: LogP(),
            "docking": lambda arg: Docking(arg or "PARP1")}


def _images_values() -> dict[str, Callable[[], Any]]:
    import svdd
    from svdd.domains.images import load_value

    return {"jpeg": lambda: svdd.LearnedValue(load_value("jpeg")),
            "classifier=shirt": lambda: svdd.LearnedValue(load_value("shirt"))}


def _dna_values() -> dict[str, Callable[[], Any]]:
    from svdd.domains.sequences import load_value

    return {"ars1": lambda: load_value("dna-ars1-activity")}


def _rna_values() -> dict[str, Callable[[], Any]]:
    from svdd.domains.sequences import load_value

    return {"mfe": lambda: load_value("rna-hairpin-mfe")}


def _molecules_values() -> dict[str, Callable[[], Any]]:
    from svdd.domains.molecules import load_value

    return {"docking": lambda: load_value("moses-selfies-docking"), "qed": lambda: load_value("moses-selfies-qed"),
            "sa": lambda: load_value("moses-selfies-sa")}


def _images_value_net(process: Any) -> Any:
    from svdd.domains.images import ValueNet

    return ValueNet()


def _sequence_value_net(process: Any) -> Any:
    from svdd.masked_nets import ConvValue

    return ConvValue(vocab_size=process.vocab_size, length=process.length, channels=64, num_blocks=4)


def _write_fasta(out_dir: Path, samples: list, rewards: np.ndarray) -> None:
    from svdd.domains.sequences import write_fasta

    write_fasta(out_dir / "samples.fasta", samples, rewards)


def _write_smiles(out_dir: Path, samples: list, rewards: np.ndarray) -> None:
    from svdd.domains.molecules import write_smiles_csv

    write_smiles_csv(out_dir / "smiles.csv", samples, rewards)


@dataclass(frozen=True)
class Domain:
    """How the command line reaches one domain (all loaders are lazy)."""

    process: Callable[[int | None], Any]
    rewards: Callable[[], dict[str, Callable[[str | None], Any]]]
    values: Callable[[], dict[str, Callable[[], Any]]]
    value_net: Callable[[Any], Any]  # process -> an untrained value network net(x, t) -> [n]
    finalize: Callable[[Path, list, np.ndarray], None] | None = None


DOMAINS: dict[str, Domain] = {
    "images": Domain(_images_process, _images_rewards, _images_values, _images_value_net),
    "dna": Domain(_dna_process, _dna_rewards, _dna_values, _sequence_value_net, _write_fasta),
    "rna": Domain(_rna_process, _rna_rewards, _rna_values, _sequence_value_net, _write_fasta),
    "molecules": Domain(_molecules_process, _molecules_rewards, _molecules_values, _sequence_value_net,
                        _write_smiles),
}


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose one of {', '.join(DOMAINS)}")
    return DOMAINS[name]


def resolve_reward(domain: str, spec: str) -> Any:
    """The reward named by `spec`: a shipped one ("ars1", "classifier=bag") or "module:callable"
    (a reward function, or a class/factory called with no arguments... if it is a class)."""
    rewards = get_domain(domain).rewards()
    name, _, arg = spec.partition("=")
    if name in rewards:
        return rewards[name](arg or None)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load custom reward {spec!r}: {exc}") from None
        return obj() if isinstance(obj, type) else obj
    raise ValueError(f"unknown reward {spec!r} for domain {domain!r}; shipped rewards: "
                     f"{', '.join(sorted(rewards))} (name or name=argument), or module:callable")


def resolve_value(domain: str, reward_spec: str, value: str, process: Any = None) -> Any:
    """None for PM ("pm"); the shipped MC value network of the reward for "mc"; or a value
    network trained by `svdd train-value` (the path of its value.pt; needs the process)."""
    if value == "pm":
        return None
    if value.endswith(".pt"):
        return load_trained_value(value, domain, process)
    if value != "mc":
        raise ValueError(f"value must be 'pm' (posterior mean), 'mc' (the shipped value network) or the "
                         f"path of a value.pt written by `svdd train-value`; got {value!r}")
    values = get_domain(domain).values()
    name = reward_spec if reward_spec in values else reward_spec.partition("=")[0]
    if name not in values:
        raise ValueError(f"no shipped MC value network for reward {reward_spec!r} in domain {domain!r}; "
                         f"available for: {', '.join(sorted(values)) or 'none'}. Use --value pm")
    return values[name]()


def load_trained_value(path: str | Path, domain: str, process: Any = None) -> Any:
    """A value network saved by `svdd train-value`, as `svdd.LearnedValue`."""
    import torch

    import svdd

    path = Path(path)
    if not path.exists():
        raise ValueError(f"no value network at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("domain") != domain:
        raise ValueError(f"{path} was trained for domain {state.get('domain')!r}, not {domain!r}")
    if process is None:  # checking the path only
        return None
    net = get_domain(domain).value_net(process)
    net.load_state_dict(state["state_dict"])
    net.eval()
    net.name = f"value({state.get('reward')})"
    return svdd.LearnedValue(net)


@dataclass(frozen=True)
class DomainJob:
    """A picklable `svdd.runs.Job`: a domain's pretrained model with a reward and a value."""

    domain: str
    reward: str
    value: str = "pm"
    steps: int | None = None

    def build(self):
        process = get_domain(self.domain).process(self.steps)
        return (process, resolve_reward(self.domain, self.reward),
                resolve_value(self.domain, self.reward, self.value, process))

    def finalize(self, out_dir: Path, samples: list, rewards: np.ndarray) -> None:
        write = get_domain(self.domain).finalize
        if write is not None:
            write(out_dir, samples, rewards)
