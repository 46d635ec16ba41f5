"""Weight files and resumable state: what svdd writes for networks, and how it reads them back
without ever unpickling code.

A network that leaves a run directory is two files: X.safetensors (the tensors, read without
unpickling anything) and X.json {"class", "config", "metadata"} (architecture and training
record): `save_net` / `load_net`, for the classes of `svdd.processes.nets.NETS` or a domain's
own table. Resumable state (training checkpoints, rollouts) is torch.save'd plain dicts of
tensors, numbers, strings and lists, read back with torch.load(weights_only=True):
`save_checkpoint` / `load_checkpoint`. A file that is damaged, foreign or unsafe is one
ValueError naming it.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .nets import NETS

RECORD_KEYS = ("class", "config", "metadata")


def net_files(path: str | Path) -> tuple[Path, Path]:
    """(X.safetensors, X.json) for `path` X, X.safetensors, X.json or X.pt."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json", ".pt") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _plain_json(obj: Any) -> Any:
    """json.dumps' fallback: numpy / 0-dim torch scalars as numbers, paths as strings."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    raise TypeError(f"{type(obj).__name__} {obj!r} cannot be stored in a weight file's JSON record")


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_weights(path: str | Path, state: Mapping[str, torch.Tensor], record: Mapping[str, Any]) -> Path:
    """Write `state` (name -> tensor) as X.safetensors and `record` ({"class", "config",
    "metadata"}, plain JSON values) as X.json, each atomically -> the .safetensors path."""
    from safetensors.torch import save_file

    weights, sidecar = net_files(path)
    text = json.dumps({k: record[k] for k in RECORD_KEYS}, indent=1, default=_plain_json) + "\n"
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}  # no shared storage
    weights.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(weights, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    _replace_atomically(sidecar, lambda tmp: tmp.write_text(text))
    return weights


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, record) of the files `write_weights` wrote for `path` (X, X.safetensors or
    X.json). Nothing is unpickled. FileNotFoundError without the weights; ValueError naming the
    file for a missing or malformed record or weights that are not a safetensors file."""
    from safetensors.torch import load_file

    weights, sidecar = net_files(path)
    if not weights.is_file():
        raise FileNotFoundError(f"no weights file {weights}")
    if not sidecar.is_file():
        raise ValueError(f"{weights} has no {sidecar.name} next to it (the record of its architecture)")
    try:
        record = json.loads(sidecar.read_text())
    except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError: ValueErrors
        raise ValueError(f"{sidecar}: not a JSON record ({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("metadata", {}), dict):
        raise ValueError(f"{sidecar}: not a weight file's record (a JSON object with class, config, metadata)")
    if not isinstance(record.get("class"), str) or not isinstance(record.get("config"), dict):
        raise ValueError(f"{sidecar}: the record names no network class and config")
    record.setdefault("metadata", {})
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors' SafetensorError for anything that is not one
        raise ValueError(f"{weights}: not a safetensors weights file ({_first_line(exc)})") from None
    return state, record


def check_weights(net: nn.Module, state: Mapping[str, Any], where: str | Path) -> None:
    """ValueError naming `where` unless `state` holds exactly `net`'s tensors, with its shapes."""
    want = net.state_dict()
    name = type(net).__name__
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    if missing or extra:
        parts = [f"{len(missing)} missing ({_few(missing)})"] if missing else []
        parts += [f"{len(extra)} unexpected ({_few(extra)})"] if extra else []
        raise ValueError(f"{where} does not hold the weights of this {name}: tensors {'; '.join(parts)}")
    for k, v in want.items():
        got = state[k]
        if not isinstance(got, torch.Tensor):
            raise ValueError(f"{where}: {k} is a {type(got).__name__}, not a tensor")
        if tuple(got.shape) != tuple(v.shape):
            raise ValueError(
                f"{where}: tensor {k} has shape {list(got.shape)}; this {name} needs {list(v.shape)} "
                "(trained for another model or configuration?)"
            )
        if got.dtype.is_floating_point != v.dtype.is_floating_point:
            raise ValueError(f"{where}: tensor {k} is {got.dtype}; this {name} needs {v.dtype}")


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def build_net(
    record: Mapping[str, Any],
    state: Mapping[str, Any],
    where: str | Path,
    nets: Mapping[str, type] | None = None,
    *,
    check_only: bool = False,
) -> nn.Module | None:
    """The network `record` names (a class in `nets`, default NETS, built from its config) with
    `state` loaded, in eval mode. The config is tried on the meta device first, so a foreign
    file is refused (ValueError naming `where`) before any real memory is allocated; with
    `check_only` that is all (nothing is built, no random number is drawn) and None returned."""
    table = NETS if nets is None else nets
    name = record.get("class")
    cls = table.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown network class {name!r}; expected one of {', '.join(table)}")
    raw = record.get("config")
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: the {name}'s config is not a dict of its constructor arguments")
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        with torch.device("meta"):
            shell = cls(**config)
    except Exception as exc:
        raise ValueError(f"{where}: its config does not build a {name} ({_first_line(exc)})") from None
    check_weights(shell, state, where)
    if check_only:
        return None
    net = cls(**config)
    net.load_state_dict(dict(state))
    net.eval()
    return net


def save_net(net: nn.Module, path: str | Path, *, nets: Mapping[str, type] | None = None, **metadata: Any) -> Path:
    """Write `net` (a class in `nets`, default NETS, with a `config` dict) as X.safetensors +
    X.json {"class", "config", "metadata"} for `path` X (or X.safetensors; X.pt names the same
    pair) -> the .safetensors path. `metadata` must be plain JSON values."""
    table = NETS if nets is None else nets
    name = type(net).__name__
    if table.get(name) is not type(net):
        raise TypeError(f"save_net saves {', '.join(table)}; got {name}")
    config = getattr(net, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{name} keeps no `config` dict of its constructor arguments")
    return write_weights(path, net.state_dict(), {"class": name, "config": dict(config), "metadata": metadata})


def load_net(path: str | Path, *, nets: Mapping[str, type] | None = None) -> tuple[Any, dict[str, Any]]:
    """(network in eval mode, metadata) from the files `save_net` wrote (`path`: X, X.safetensors
    or X.json). Nothing is unpickled: the class must be in `nets` (default NETS) and the tensors'
    names and shapes those of a net built from the record's config, else one ValueError naming
    the file. An older single-file X.pt {class, config, state_dict, metadata} is still read when
    it exists, with torch.load(weights_only=True) (plain values only)."""
    path = Path(path)
    record: dict[str, Any]
    state: Mapping[str, Any]
    if path.suffix == ".pt" and path.is_file():
        blob = load_checkpoint(path, "network file")
        if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), Mapping):
            raise ValueError(f"{path}: not a network file (no state_dict)")
        if not isinstance(blob.get("metadata", {}), dict):
            raise ValueError(f"{path}: its metadata is not a dict")
        record = {"class": blob.get("class"), "config": blob.get("config"), "metadata": blob.get("metadata") or {}}
        state = blob["state_dict"]
        where = path
    else:
        state, record = read_weights(path)
        where = net_files(path)[0]
    net = build_net(record, state, where, nets)
    assert net is not None
    return net, dict(record["metadata"])


# -- resumable state ------------------------------------------------------------------------

_PLAIN = (torch.Tensor, str, int, float, bool, type(None))


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _check_plain(item, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)):
                raise TypeError(f"a checkpoint's keys must be str, int or float; {where} has {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
    else:
        raise TypeError(
            "a checkpoint holds tensors, numbers, strings, lists and dicts only; "
            f"{where} is of type {type(obj).__name__}"
        )


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """torch.save `state` to `path` atomically; TypeError if it holds anything but tensors,
    numbers, strings, None, lists, tuples and dicts (what `load_checkpoint` reads back)."""
    _check_plain(dict(state), "state")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, lambda tmp: torch.save(dict(state), str(tmp)))


def load_checkpoint(path: str | Path, what: str = "checkpoint") -> Any:
    """torch.load(path, weights_only=True) on the CPU: tensors and plain values only, so nothing
    in the file can run code. A file holding other objects, damaged or not a torch file at all
    is one ValueError naming it and `what` it should have been."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error says it all
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text:
            detail = text.partition("WeightsUnpickler error:")[2].strip().split("\n")[0].split(". ")[0].strip()
            raise ValueError(
                f"{path}: refused to load the {what}: it holds objects other than tensors and plain values, "
                f"which could run code ({detail or 'unsupported content'}); svdd never unpickles such files"
            ) from None
        raise ValueError(f"{path}: cannot read the {what}: not a torch file or damaged ({_first_line(exc)})") from None
    except Exception as exc:  # a truncated zip (RuntimeError), EOFError, a foreign format
        raise ValueError(f"{path}: cannot read the {what}: not a torch file or damaged ({_first_line(exc)})") from None
