"""Domain plug-ins and user objects named on the command line.

A *domain* bundles a pretrained model, its rewards and value networks for `svdd generate` and
`svdd train-value`. Domains register in the `svdd.domains` entry-point group of any installed
package, so the core never imports them:

    # pyproject.toml of a package that ships a domain
    [project.entry-points."svdd.domains"]
    enzymes = "my_package.enzymes_plugin:DOMAIN"     # a svdd.runs.plugins.Domain

`load_object` resolves the `module:name` / `path/to/file.py:name` strings that name a user's own
process factory (`--process`), reward (`--reward`) or value (`--value`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ENTRY_POINT_GROUP = "svdd.domains"

RewardFactory = Callable[[str | None], Any]  # the argument after "=" in "name=arg" (None without)


def no_argument(name: str, make: Callable[[], Any]) -> RewardFactory:
    """The factory of a reward that takes no argument: `make()`, and `name=anything` is refused
    (a ValueError) rather than silently ignored."""

    def factory(arg: str | None) -> Any:
        if arg:
            raise ValueError(f"reward {name} takes no argument; got {name}={arg}")
        return make()

    return factory


def _no_values() -> Mapping[str, Callable[[Any], Any]]:
    return {}


@dataclass(frozen=True)
class Domain:
    """What a domain gives the command line. Every callable is lazy: loading the plug-in imports
    nothing heavy, so `svdd generate --help` and argument checks stay fast.

    name: the domain's name on the command line (`svdd generate NAME`).
    summary: one line for listings.
    load_process: `(*, steps: int | None, device: str, **options: str) -> DenoisingProcess`;
        `steps` None means the domain's default; `options` are the domain's own command-line
        options (see `options`), given as strings.
    rewards: `(**options) -> {name: factory(arg)}`; `--reward name=arg` calls `factory("arg")`. The
        names are the ones the domain's Python module accepts too (`load_reward("name=arg")`). It
        receives those of the domain's options it names as parameters (a reward that depends on
        `--backbone`, say), and none if it takes none.
    values: `(**options) -> {reward name: factory(device) -> svdd.LearnedValue}`, the shipped MC
        value networks (`--value mc`) that fit the process these options make.
    value_net: `process -> untrained network net(x, t) -> values [n]` for `svdd train-value`.
    columns: `(process, samples) -> {column: list}`: extra per-sample columns of the output table
        (an RNA structure, a recovery), or None.
    write: `(out_dir, samples, rewards, columns) -> [paths]`: files in the domain's own formats
        (FASTA, SDF), or None.
    options: the domain's own command-line options, `{name: help}` (`--backbone FILE`).
    requires: what to install when the domain's dependencies are missing.
    needs: the importable modules the domain uses anywhere (model, rewards, writers); a domain
        whose needs are not all installed is refused by `load_domain`, before any work.
    """

    name: str
    summary: str
    load_process: Callable[..., Any]
    rewards: Callable[[], Mapping[str, RewardFactory]]
    values: Callable[[], Mapping[str, Callable[[Any], Any]]] = _no_values
    value_net: Callable[[Any], Any] | None = None
    columns: Callable[[Any, list], Mapping[str, list]] | None = None
    write: Callable[[Path, list, np.ndarray, Any], list[Path]] | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    requires: str = ""
    needs: tuple[str, ...] = ()


class PluginError(ValueError):
    """A domain, process, reward or value named by the user cannot be found or loaded."""


def domain_names() -> list[str]:
    """Names of the installed domains, sorted."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def load_domain(name: str) -> Domain:
    """The installed domain `name`, or PluginError naming the installed ones."""
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        names = domain_names()
        raise PluginError(
            f"unknown domain {name!r}; installed domains: {', '.join(names) or 'none'} "
            "(or pass --process module:factory for your own model)"
        )
    try:
        domain = found[0].load()
    except ImportError as exc:
        raise PluginError(f"domain {name!r} cannot be loaded ({exc}); is its extra installed?") from None
    if not isinstance(domain, Domain):
        raise PluginError(
            f"entry point {found[0].value!r} of domain {name!r} is a {type(domain).__name__}, not a svdd.runs.Domain"
        )
    missing = [module for module in domain.needs if importlib.util.find_spec(module) is None]
    if missing:
        hint = f": {domain.requires}" if domain.requires else ""
        raise PluginError(f"domain {name!r} needs {', '.join(missing)}, which is not installed{hint}")
    return domain


def with_options(fn: Callable[..., Any], options: Mapping[str, str | None]) -> Any:
    """`fn(**the options it names as parameters)` (all of them if it takes **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(**options)
    return fn(**{k: v for k, v in options.items() if k in params})


def domain_reward(domain: Domain, spec: str, options: Mapping[str, str | None] | None = None) -> Any:
    """The reward `spec` of `domain`: a shipped name ("qed", "classifier=shirt") or a user object
    (`module:name`, `file.py:name`, optionally `=arg`; see `load_object`). `options` are the
    domain's own options, for rewards that depend on them."""
    name, sep, arg = spec.partition("=")
    if sep and not arg.strip():
        raise PluginError(
            f"reward {spec!r} has nothing after '='; give an argument ({name}=...) or write {name!r} for its default"
        )
    shipped = _requirement_guard(domain, lambda: with_options(domain.rewards, options or {}))
    if name in shipped:
        try:
            return shipped[name](arg or None)
        except (ValueError, TypeError) as exc:
            raise PluginError(f"reward {spec!r} of domain {domain.name!r}: {exc}") from None
    if ":" in spec:
        return load_object(spec, "reward")
    raise PluginError(
        f"unknown reward {spec!r} for domain {domain.name!r}; shipped rewards: "
        f"{', '.join(sorted(shipped))} (name or name=argument), or module:callable / file.py:callable"
    )


def _requirement_guard(domain: Domain, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ImportError as exc:
        hint = f" ({domain.requires})" if domain.requires else ""
        raise PluginError(f"domain {domain.name!r} needs packages that are not installed: {exc}{hint}") from None


def load_object(spec: str, what: str = "object", *, call: bool = True) -> Any:
    """The object named by `spec`: `module:name`, `path/to/file.py:name`, or either with `=arg`.

    `name` may be dotted (`module:Class.method`). With `=arg`, the object is called with the
    string `arg` (`mymod:Target=9.5` -> `Target("9.5")`); without, a class is instantiated with no
    arguments and any other object is returned as it is (`call=False`: never called). Every
    failure (no such file or module, a syntax error in it, an exception while importing it or
    while calling the class, no such name) is a PluginError of one line that names `spec`.
    """
    target, sep, arg = spec.partition("=")
    source, colon, attr = target.rpartition(":")
    if not colon or not source or not attr:
        raise PluginError(f"{what} {spec!r} must look like module:name or path/to/file.py:name (optionally =arg)")
    module = _import_source(source, spec, what)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"{what} {spec!r}: {source} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not call:
        if sep:
            raise PluginError(f"{what} {spec!r} takes no =argument")
        return obj
    try:
        if sep:
            if not callable(obj):
                raise PluginError(f"{what} {spec!r}: {attr} is not callable, so it cannot take the argument {arg!r}")
            return obj(arg)
        return obj() if inspect.isclass(obj) else obj
    except PluginError:
        raise
    except Exception as exc:  # a user's constructor failing: one line, not a traceback
        raise PluginError(f"{what} {spec!r}: calling {attr} raised {type(exc).__name__}: {exc}") from None


def _import_source(source: str, spec: str, what: str) -> Any:
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise PluginError(f"{what} {spec!r}: no file {path}")
        module_name = f"svdd_user_{path.stem}_{abs(hash(str(path.resolve())))}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise PluginError(f"{what} {spec!r}: {path} is not a Python file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[module_name]
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise PluginError(f"{what} {spec!r}: importing {path} failed: {_describe(exc)}") from None
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.split(".")[0] == exc.name.split(".")[0]:
            raise PluginError(f"{what} {spec!r}: no module named {source!r} (is it on PYTHONPATH?)") from None
        raise PluginError(f"{what} {spec!r}: importing {source} failed: {_describe(exc)}") from None
    except Exception as exc:
        raise PluginError(f"{what} {spec!r}: importing {source} failed: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"
