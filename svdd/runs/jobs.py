"""What `svdd generate` samples from: a plug-in domain, or the user's own process factory.

Jobs hold only strings, so they pickle cheaply to worker processes, which build the model,
reward and value themselves (`build`). Both kinds of job resolve names the same way:

* reward: a domain's shipped reward ("qed", "classifier=shirt"), or a user object
  `module:name` / `path/to/file.py:name` (optionally `=arg`; see `svdd.runs.plugins.load_object`);
* value: "pm" (posterior mean on the reward), "mc" (the domain's shipped value network for the
  reward), the `value.safetensors` (+ `value.json`) written by `svdd train-value` or its --out
  directory (an older `value.pt` is read with torch.load(weights_only=True), never unpickled), or
  a user object (`module:name`): a value object (`svdd.LearnedValue`, `svdd.PosteriorMean`, ...)
  or a function fn(x, t), which is wrapped as `svdd.LearnedValue(fn)`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .plugins import Domain, PluginError, domain_reward, load_domain, load_object, with_options


def resolve_device(requested: str | None) -> str:
    """The device this process's model goes to.

    Under a multi-process launch (`torchrun`, `accelerate launch`: WORLD_SIZE > 1) with CUDA,
    each rank takes its own GPU, `cuda:LOCAL_RANK`; `requested` "cuda" means the same. Otherwise
    `requested`, or "cuda" when CUDA is available and "cpu" when not. A device this machine
    cannot compute on (no CUDA, an index past its GPUs, `meta`, a backend torch lacks) is a
    ValueError naming it.
    """
    launched = _env_int("WORLD_SIZE", 1) > 1
    local_rank = _env_int("LOCAL_RANK", 0)
    cuda = torch.cuda.is_available()
    if requested is None:
        requested = "cuda" if cuda else "cpu"
    if requested == "cuda" and launched:
        requested = f"cuda:{local_rank}"
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ValueError(f"--device {requested!r} is not a torch device (e.g. cpu, cuda, cuda:1): {exc}") from None
    if device.type == "cuda" and not cuda:
        raise ValueError(f"--device {requested!r}: CUDA is not available on this machine; use --device cpu")
    if not _computes_on(device):
        raise ValueError(
            f"--device {requested!r} is not available on this machine; use cpu or an available GPU (cuda:N)"
        )
    return str(device)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer; got {raw!r}") from None


def _computes_on(device: torch.device) -> bool:
    """Whether models can run on `device` here: its backend is built and available, and its index
    (if any) names one of its devices."""
    if device.type == "cpu":
        return True
    if device.type == "mps":
        return torch.backends.mps.is_available()
    backend = getattr(torch, device.type, None)
    is_available = getattr(backend, "is_available", None)
    if not callable(is_available) or not is_available():
        return False
    count = getattr(backend, "device_count", None)
    return device.index is None or not callable(count) or device.index < count()


def _value_object(obj: Any, spec: str) -> Any:
    """A user's value: a value object as it is, a plain function wrapped as LearnedValue."""
    from ..sampling.values import LearnedValue

    if hasattr(obj, "needs_model_output"):  # the Value protocol's marker; svdd.sample checks the rest
        return obj
    if callable(obj):
        return LearnedValue(obj)
    raise PluginError(f"value {spec!r} is a {type(obj).__name__}; expected a value object or a function fn(x, t)")


VALUE_FILES = (".safetensors", ".json", ".pt")  # what `--value` names as a file of `svdd train-value`


def _value_file(path: Path) -> Path:
    """The weights file `--value` names: the file itself, or value.safetensors (else an older
    value.pt) in a `svdd train-value` --out directory."""
    if path.is_dir():
        for name in ("value.safetensors", "value.pt"):
            if (path / name).is_file():
                return path / name
        raise PluginError(f"no value network in {path} (value.safetensors of `svdd train-value`)")
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise PluginError(f"no value network at {path}")
    return path


def read_trained_value(path: str | Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """(weights file, tensors, record {"class", "config", "metadata"}) of a value network of
    `svdd train-value`: value.safetensors + value.json, read without unpickling anything; an
    older value.pt through torch.load(weights_only=True), so only tensors and plain values. A
    missing, damaged, foreign or unsafe file is one PluginError naming it."""
    from ..processes.weights import load_checkpoint, read_weights

    file = _value_file(Path(path))
    try:
        if file.suffix == ".pt":
            blob = load_checkpoint(file, "value network")
            if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), Mapping):
                raise ValueError(f"{file} is not a value network written by `svdd train-value`")
            meta: dict[str, Any] = blob["metadata"] if isinstance(blob.get("metadata"), dict) else {}
            record: dict[str, Any] = {
                "class": None,
                "config": None,
                "metadata": {**meta, "domain": blob.get("domain"), "reward": blob.get("reward")},
            }
            state = dict(blob["state_dict"])
        else:
            state, record = read_weights(file)
    except (ValueError, OSError) as exc:
        raise PluginError(str(exc)) from None
    return file, state, record


def load_trained_value(path: str | Path, domain: Domain, process: Any = None, device: str = "cpu") -> Any:
    """The value network saved by `svdd train-value` at `path` (its value.safetensors, or the
    --out directory) as `svdd.LearnedValue`. Without a process only the file is checked (and
    None returned): readable, trained for this domain, and, for a network of
    `svdd.processes.nets.NETS`, tensors of the names and shapes its config gives; with one,
    the tensors must fit `domain.value_net(process)`. Anything wrong is one PluginError naming
    the file, raised before any sampling."""
    from ..processes.nets import NETS
    from ..processes.weights import build_net, check_weights
    from ..sampling.values import LearnedValue

    file, state, record = read_trained_value(path)
    meta = record["metadata"]
    if meta.get("domain") != domain.name:
        raise PluginError(f"{file} was trained for domain {meta.get('domain')!r}, not {domain.name!r}")
    if domain.value_net is None:
        raise PluginError(f"domain {domain.name!r} has no value network architecture for `svdd train-value`")
    try:
        if process is None:
            if record.get("class") in NETS:  # cheap: built on the meta device, no memory
                build_net(record, state, file, check_only=True)
            return None
        net = domain.value_net(process)
        if record.get("class") not in (None, type(net).__name__):
            raise ValueError(
                f"{file} holds a network of class {record['class']!r}; "
                f"the {domain.name} value network is a {type(net).__name__}"
            )
        check_weights(net, state, file)
        net.load_state_dict(state)
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    net.eval()
    return LearnedValue(net.to(device), name=f"value({meta.get('reward')})")


@dataclass(frozen=True)
class DomainJob:
    """A plug-in domain's pretrained model with a reward and a value (a picklable `svdd.runs.Job`).

    options: the domain's own options (`Domain.options`, e.g. {"backbone": "1ubi"}), as strings
        (None: given without a value, which `check` refuses).
    """

    domain: str
    reward: str
    value: str = "pm"
    steps: int | None = None
    device: str = "cpu"
    options: Mapping[str, str | None] = field(default_factory=dict)

    def plugin(self) -> Domain:
        return load_domain(self.domain)

    def check(self) -> None:
        """Every name resolves (domain, its options, reward, value) without loading the model."""
        domain = self.plugin()
        unknown = sorted(set(self.options) - set(domain.options))
        if unknown:
            accepted = ", ".join(f"--{k}" for k in domain.options) or "none"
            raise PluginError(
                f"domain {self.domain!r} has no option {', '.join('--' + k for k in unknown)}; its options: {accepted}"
            )
        bare = [k for k, v in self.options.items() if v is None]
        if bare:
            raise PluginError(f"option --{bare[0]} of domain {self.domain!r} needs a value ({domain.options[bare[0]]})")
        domain_reward(domain, self.reward, self.options)
        self._value(domain, None)

    def build(self) -> tuple[Any, Any, Any]:
        domain = self.plugin()
        process = domain.load_process(steps=self.steps, device=self.device, **dict(self.options))
        return process, domain_reward(domain, self.reward, self.options), self._value(domain, process)

    def _value(self, domain: Domain, process: Any) -> Any:
        if self.value == "pm":
            return None
        if self.value == "mc":
            values = with_options(domain.values, self.options)
            name = self.reward  # exactly: "docking=JAK2" must not get the value of "docking" (PARP1)
            if name not in values:
                raise PluginError(
                    f"no shipped MC value network for reward {self.reward!r} in domain "
                    f"{self.domain!r}; available for: {', '.join(sorted(values)) or 'none'}. "
                    "Use --value pm"
                )
            return values[name](self.device) if process is not None else None
        if self.value.endswith(VALUE_FILES) or Path(self.value).is_dir():
            return load_trained_value(self.value, domain, process, self.device)
        if ":" in self.value:
            return _value_object(load_object(self.value, "value"), self.value)
        raise PluginError(
            f"--value must be pm (posterior mean), mc (the shipped value network), the value.safetensors "
            f"(or --out directory) of `svdd train-value`, or module:name; got {self.value!r}"
        )

    def columns(self, process: Any, samples: list) -> Mapping[str, list]:
        domain = self.plugin()
        return domain.columns(process, samples) if domain.columns is not None else {}

    def write(self, out_dir: Path, samples: list, rewards: np.ndarray, columns: Mapping[str, list]) -> list[Path]:
        domain = self.plugin()
        return domain.write(out_dir, samples, rewards, columns) if domain.write is not None else []


@dataclass(frozen=True)
class ProcessJob:
    """The user's own model: `process` names a factory (`module:name` or `file.py:name`) that
    returns a `svdd.DenoisingProcess`; it is called as `factory()`, or `factory(num_steps=K)`
    with --steps. `reward` and `value` are user objects (`module:name`) or "pm" for the value."""

    process: str
    reward: str
    value: str = "pm"
    steps: int | None = None

    def check(self) -> None:
        self._factory()
        self._reward()
        self._value()

    def _factory(self) -> Any:
        factory = load_object(self.process, "process factory", call=False)
        if not callable(factory):
            raise PluginError(f"--process {self.process!r} is a {type(factory).__name__}, not a factory function")
        return factory

    def build(self) -> tuple[Any, Any, Any]:
        factory = self._factory()
        try:
            process = factory(num_steps=self.steps) if self.steps is not None else factory()
        except (Exception, SystemExit) as exc:  # a user's factory failing, or calling sys.exit: one line
            raise PluginError(f"--process {self.process!r} raised {type(exc).__name__}: {exc}") from None
        return process, self._reward(), self._value()

    def _reward(self) -> Any:
        if ":" not in self.reward:
            raise PluginError(
                f"with --process, --reward names your own reward as module:name or file.py:name; got {self.reward!r}"
            )
        return load_object(self.reward, "reward")

    def _value(self) -> Any:
        if self.value == "pm":
            return None
        if ":" in self.value:
            return _value_object(load_object(self.value, "value"), self.value)
        raise PluginError(f"with --process, --value is pm or module:name; got {self.value!r}")
