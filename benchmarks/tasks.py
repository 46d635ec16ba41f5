"""The one loader of benchmark tasks: a domain plug-in, a reward by its command-line name, the
shipped MC value network, and how to describe a batch of samples (diversity, naturalness).

Everything is built through `svdd.runs.plugins.load_domain(name)`: the process from
`Domain.load_process(steps=, device=)`, the reward from `Domain.rewards()` (the names of
`svdd generate DOMAIN --reward NAME`), the MC value from `Domain.values()`. What a domain's samples
look like (token sequences, protein designs, molecules, images) decides the diversity and naturalness measures;
those live in one small class per kind of sample (`KINDS`).

    task = Task("dna_ars1", steps=32)
    res = svdd.sample(task.process, task.reward, value=task.value, ...)
    task.diversity(res), task.naturalness(res)

A new task is one entry of `TASKS`; a new domain is one more kind class (and its TASKS entries).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch

import svdd
from svdd.runs import Domain, domain_reward, load_domain
from svdd.runs.plugins import with_options

from .metrics import cosine_distance, one_hot_distance, uniqueness

DISCRETE = "the states are discrete (no gradient to follow)"


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task: which plug-in domain, which reward (and shipped MC value) it uses.

    domain: `svdd.runs.plugins` domain name; reward: the reward's command-line name (`name` or
    `name=arg`), also the key of the domain's shipped value network; label: the reward as the
    tables name it; short: a short name for the task; smc_alpha: the SMC temperature the tables
    use; smc_mc_value: SMC weights by the MC value network instead of the posterior mean (where
    PM would call an expensive oracle on N·M states per step); options: the domain's own options
    (`svdd generate DOMAIN --NAME VALUE`) as (name, value) pairs, e.g. which shipped model.
    """

    domain: str
    reward: str
    label: str
    short: str
    smc_alpha: float
    smc_mc_value: bool = False
    options: tuple[tuple[str, str], ...] = ()

    @property
    def dps_unavailable(self) -> str | None:
        """Why DPS cannot run on this task (no differentiable surrogate of the reward), or None."""
        return KINDS[self.domain].dps_unavailable(self)


TASKS: dict[str, TaskSpec] = {
    "images_jpeg": TaskSpec("images", "jpeg", "JPEG compressibility (-kB)", "images JPEG", 0.02),
    "images_shirt": TaskSpec("images", "classifier=shirt", "classifier log p(shirt)", "images shirt", 1.0),
    "images_flow_jpeg": TaskSpec("images", "jpeg", "JPEG compressibility (-kB), DiT flow model", "images flow JPEG",
                                 0.02, options=(("model", "fashion-mnist-dit-flow"),)),
    "images_flow_shirt": TaskSpec("images", "classifier=shirt", "classifier log p(shirt), DiT flow model",
                                  "images flow shirt", 1.0, options=(("model", "fashion-mnist-dit-flow"),)),
    "molecules_qed": TaskSpec("molecules", "qed", "QED", "molecules QED", 0.02),
    "molecules_sa": TaskSpec("molecules", "sa", "SA ((10-SA)/9)", "molecules SA", 0.02),
    "molecules_docking": TaskSpec("molecules", "docking", "PARP1 docking (-Vina kcal/mol)", "molecules docking",
                                  0.2, smc_mc_value=True),
    "dna_ars1": TaskSpec("dna", "ars1", "ARS1 activity (standardised)", "DNA ARS1", 0.1),
    "rna_mfe": TaskSpec("rna", "mfe", "RNA -MFE (kcal/mol)", "RNA -MFE", 1.0),
    "proteins_instability": TaskSpec("proteins", "instability", "-(instability index), ubiquitin 1ubi backbone",
                                     "proteins", 1.0),
}


class Task:
    """A built task: `process`, `reward`, the lazily loaded MC `value`, and sample descriptions.

    steps: reverse steps K (None: the domain's default); device: where the model runs;
    reward_workers: score the reward on a process pool of that many workers where the reward
    supports it (docking), shut down by `close()`.
    """

    def __init__(self, name: str, *, steps: int | None = None, device: str = "cpu",
                 reward_workers: int | None = None):
        if name not in TASKS:
            raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
        self.name, self.spec, self.device = name, TASKS[name], device
        self.domain: Domain = load_domain(self.spec.domain)
        self.kind = KINDS[self.spec.domain]()
        self.process = self.domain.load_process(steps=steps, device=device, **dict(self.spec.options))
        self._closers: list[Callable[[], Any]] = []
        self.reward = self.make_reward(self.spec.reward, workers=reward_workers)

    def make_reward(self, spec: str, *, workers: int | None = None) -> Any:
        """The domain's reward `spec` (a command-line name), on `workers` processes where supported."""
        if workers:
            parallel = self.kind.parallel_reward(spec, workers)
            if parallel is not None:
                reward, close = parallel
                self._closers.append(close)
                return reward
        return domain_reward(self.domain, spec)

    def with_reward(self, spec: str, label: str | None = None) -> Task:
        """This task's process with another reward of the domain (`spec`, a command-line name)."""
        other = copy.copy(self)
        other.name, other.spec = f"{self.spec.domain}:{spec}", replace(self.spec, reward=spec, label=label or spec)
        other.reward = domain_reward(self.domain, spec)
        other.__dict__.pop("value", None)
        other._closers = []
        return other

    @cached_property
    def value(self) -> Any:
        """The shipped MC value network for this task's reward (`svdd.LearnedValue`), loaded once."""
        values = with_options(self.domain.values, dict(self.spec.options))
        if self.spec.reward not in values:
            raise ValueError(f"domain {self.domain.name!r} ships no value network for {self.spec.reward!r}; "
                             f"it has {', '.join(values) or 'none'}")
        return values[self.spec.reward](self.device)

    def diversity(self, res: svdd.Result) -> float:
        """Mean pairwise distance of the samples (the measure depends on the kind of sample)."""
        return self.kind.diversity(self, res)

    def validity_uniqueness(self, res: svdd.Result) -> tuple[float, float]:
        """(share of valid samples, share of distinct valid samples)."""
        return self.kind.validity_uniqueness(self, res)

    def naturalness(self, res: svdd.Result) -> dict[str, float]:
        """How likely the samples are under the pretrained model (and validity where it applies)."""
        return self.kind.naturalness(self, res)

    @property
    def dps_reward(self) -> Any:
        """A differentiable surrogate of the reward for DPS, or None (`spec.dps_unavailable` says why)."""
        return self.kind.dps_reward(self)

    def close(self) -> None:
        """Shut down the reward's worker pool, if any."""
        while self._closers:
            self._closers.pop()()


# -------------------------------------------------------------------------------- kinds of samples

class _Kind:
    """How to describe samples of one kind; the defaults suit any domain."""

    @cached_property
    def ddpm(self) -> Any:
        from svdd.domains.images import load_pipeline

        return load_pipeline()

    def diversity(self, task: Task, res: svdd.Result) -> float:
        return float("nan")

    def validity_uniqueness(self, task: Task, res: svdd.Result) -> tuple[float, float]:
        return 1.0, uniqueness(res.samples)

    def naturalness(self, task: Task, res: svdd.Result) -> dict[str, float]:
        return {}

    def dps_reward(self, task: Task) -> Any:
        return None

    @staticmethod
    def dps_unavailable(spec: TaskSpec) -> str | None:
        return "no differentiable surrogate of this reward"

    def parallel_reward(self, spec: str, workers: int) -> tuple[Any, Callable[[], Any]] | None:
        return None


def masked_elbo(process: Any, tokens: torch.Tensor, seed: int = 0) -> np.ndarray:
    """ELBO in nats per sequence, float64 [n], of clean token states Long[n, L] (16 stratified times)."""
    from svdd.processes import elbo

    return elbo(process, tokens.long(), num_times=16, seed=seed).numpy()


class _Sequences(_Kind):
    """DNA/RNA token sequences: one-hot distance, ELBO and uniqueness."""

    def diversity(self, task: Task, res: svdd.Result) -> float:
        return one_hot_distance(res.states.long())

    def naturalness(self, task: Task, res: svdd.Result) -> dict[str, float]:
        return {"elbo_nats": float(masked_elbo(task.process, res.states).mean()), "uniqueness": uniqueness(res.samples)}

    @staticmethod
    def dps_unavailable(spec: TaskSpec) -> str | None:
        return DISCRETE


class _Proteins(_Sequences):
    """Protein designs on a backbone (ProteinMPNN): one-hot distance, ProteinMPNN's N->C log-likelihood per
    residue on the backbone (naturalness), native sequence recovery and uniqueness."""

    def naturalness(self, task: Task, res: svdd.Result) -> dict[str, float]:
        from svdd.domains.proteins import MPNNLogLikelihood

        loglik = MPNNLogLikelihood(task.process.denoiser)(res.samples)
        recovery = task.process.recovery(res.samples)
        return {"mpnn_loglik": float(np.nanmean(loglik)), "recovery": float(np.nanmean(recovery)),
                "uniqueness": uniqueness(res.samples)}


class _Molecules(_Kind):
    """SMILES from SELFIES states: Tanimoto distance, validity, uniqueness of canonical SMILES, ELBO."""

    def diversity(self, task: Task, res: svdd.Result) -> float:
        from svdd.domains.molecules import mean_pairwise_tanimoto_distance

        return mean_pairwise_tanimoto_distance(res.samples)

    def validity_uniqueness(self, task: Task, res: svdd.Result) -> tuple[float, float]:
        from svdd.domains.molecules import canonical

        canon = [canonical(s) for s in res.samples]
        valid = [c for c in canon if c]
        return len(valid) / len(canon), uniqueness(valid)

    def naturalness(self, task: Task, res: svdd.Result) -> dict[str, float]:
        validity, unique = self.validity_uniqueness(task, res)
        return {"validity": validity, "uniqueness": unique,
                "elbo_nats": float(masked_elbo(task.process, res.states).mean())}

    @staticmethod
    def dps_unavailable(spec: TaskSpec) -> str | None:
        return DISCRETE

    def parallel_reward(self, spec: str, workers: int) -> tuple[Any, Callable[[], Any]] | None:
        name, _, target = spec.partition("=")
        if name != "docking":
            return None
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from svdd.domains.molecules import Docking

        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        return Docking(target or "PARP1", executor=pool), pool.shutdown


class _Images(_Kind):
    """Images: 1 - cosine of the shipped classifier's embeddings; the shipped DDPM's -ELBO in bits/dim
    (of the decoded images, so the DiT flow model's samples are measured by the same yardstick)."""

    @cached_property
    def classifier(self) -> Any:
        from svdd.domains.images import load_classifier

        return load_classifier()

    def diversity(self, task: Task, res: svdd.Result) -> float:
        from svdd.domains.images.rewards import to_classifier_input

        clf = self.classifier
        embed = torch.nn.Sequential(clf.features, *list(clf.head)[:-1]).eval()  # the 128-d penultimate layer
        with torch.no_grad():
            features = embed(torch.stack([to_classifier_input(img) for img in res.samples]))
        return cosine_distance(features)

    def naturalness(self, task: Task, res: svdd.Result) -> dict[str, float]:
        from svdd.domains.images.likelihood import negative_elbo

        images = torch.stack([torch.as_tensor(img, dtype=torch.float32) for img in res.samples]) * 2 - 1  # [n,1,32,32]
        nll = negative_elbo(self.ddpm, images.clamp(-1, 1), num_times=16, seed=0).numpy()
        return {"neg_elbo_bits_per_dim": float(nll.mean())}

    def dps_reward(self, task: Task) -> Any:
        index = getattr(task.reward, "class_index", None)
        if index is None:
            return None
        clf = self.classifier

        vae = getattr(task.process.pipeline, "vae", None)

        def log_p(x0: torch.Tensor) -> torch.Tensor:  # x0_hat [n, 1, 32, 32] in [-1, 1], or VAE latents
            if vae is not None and x0.shape[-3] == vae.config.latent_channels:  # DiT latents: decode in the graph
                x0 = vae.decode(x0 / vae.config.scaling_factor).sample
            return torch.log_softmax(clf(x0.clamp(-1.0, 1.0)), dim=-1)[:, index]

        return svdd.rewards.TorchReward(log_p, name=f"log_p({task.reward.class_name}) surrogate")

    @staticmethod
    def dps_unavailable(spec: TaskSpec) -> str | None:
        if spec.reward.startswith("classifier"):
            return None
        return "JPEG size has no differentiable surrogate here"


KINDS: dict[str, type[_Kind]] = {"dna": _Sequences, "rna": _Sequences, "molecules": _Molecules, "images": _Images,
                                 "proteins": _Proteins}
