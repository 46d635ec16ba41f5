"""The `svdd` command line: batch generation on installed domains or on the user's own model.

    svdd generate molecules --reward qed --method svdd -M 10 -n 5000 --out runs/qed
    svdd generate dna --reward ars1 -n 1000 --out runs/ars1 --executor processes --workers 2
    svdd generate --process my_model.py:make_process --reward my_model.py:score -n 64 --out runs/mine
    svdd domains                      # the installed domains, their rewards and options

Domains are plug-ins found through the `svdd.domains` entry-point group (`svdd.runs.plugins`).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
import typer.core

from .. import __version__

app = typer.Typer(
    help="Reward-guided sampling from pretrained diffusion models (SVDD).", no_args_is_help=True, add_completion=False
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"svdd {__version__}")
        raise typer.Exit()


@app.callback()
def _commands(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Reward-guided sampling from pretrained diffusion models (SVDD)."""


MAX_STEPS = 100_000  # more denoising steps than any model uses; a schedule past it would not fit in memory


def _check_steps(steps: int | None) -> None:
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be an integer >= 1; got {steps}")
    if steps is not None and steps > MAX_STEPS:
        raise ValueError(f"--steps must be at most {MAX_STEPS} (longer would not fit in memory); got {steps}")


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


class _OneLineErrors(typer.core.TyperCommand):
    """A command whose usage errors (a value that is not a number, a missing --out) end in one
    `error:` line and exit code 2, like every other refusal of `svdd generate`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as exc:  # a bad value, or a missing option (MissingParameter)
            _fail(exc.format_message())


def parse_option_value(raw: str) -> Any:
    """A method option's value from the command line: JSON when it parses (numbers, lists such
    as [28, 29, 30], null, true), otherwise the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _parse_options(options: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in options:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            _fail(f"--option takes key=value (e.g. resample_fraction=0.05); got {item!r}")
        if key in parsed:
            _fail(f"--option {key} is given twice ({key}={parsed[key]!r} and {item!r}); give it once")
        parsed[key] = parse_option_value(raw)
    return parsed


def _domain_options(args: list[str]) -> dict[str, str | None]:
    """`--name value` / `--name=value` pairs left over by the common options (a domain's own).
    A name without a value maps to None: the job says whether the domain knows the option at all."""
    parsed: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            _fail(f"unexpected argument {arg!r}")
        name, sep, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if key in parsed:
            _fail(f"option --{name} is given twice; give it once")
        if sep:
            parsed[key] = value
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            parsed[key] = args[i + 1]
            i += 1
        else:
            parsed[key] = None
        i += 1
    return parsed


@app.command(cls=_OneLineErrors, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def generate(
    ctx: typer.Context,
    domain: str | None = typer.Argument(None, help="an installed domain (see `svdd domains`); omit it with --process"),
    reward: str = typer.Option(
        ..., "--reward", "-r", help="a domain reward (name or name=arg), or module:callable / file.py:callable[=arg]"
    ),
    num_samples: int = typer.Option(..., "-n", "--num-samples", help="samples to generate"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory (resumes a run already there)"),
    process: str | None = typer.Option(
        None, "--process", help="your own model: module:factory or file.py:factory returning a svdd.DenoisingProcess"
    ),
    method: str = typer.Option(
        "svdd", "--method", help="pretrained | best_of_n | svdd | svdd_r | smc | fk | beam | refine | dps"
    ),
    num_candidates: int = typer.Option(10, "-M", "--num-candidates", help="M, candidates per sample and step"),
    alpha: float = typer.Option(0.0, "--alpha", help="temperature; 0 keeps the best candidate"),
    value: str = typer.Option(
        "pm",
        "--value",
        help="pm (posterior mean), mc (the domain's value network), the value.safetensors "
        "(or the --out directory) of `svdd train-value`, or module:callable",
    ),
    steps: int | None = typer.Option(None, "--steps", help="denoising steps (default: the model's)"),
    seed: int = typer.Option(0, "--seed"),
    shard_size: int = typer.Option(64, "--shard-size", help="samples per shard (the unit of resumption)"),
    max_batch: int | None = typer.Option(
        None,
        "--max-batch",
        help="most rows per model call and candidates held at once (default: 64-row model calls on a CPU)",
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        help="cpu, cuda, cuda:1 (default: cuda when available; each rank its own GPU under torchrun/accelerate)",
    ),
    table_format: str = typer.Option("csv", "--format", help="sample table: csv | parquet"),
    executor: str = typer.Option("none", "--executor", help="none | processes | ray"),
    workers: int = typer.Option(2, "--workers", help="worker processes (processes, local ray)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="a Ray cluster address"),
    option: list[str] = typer.Option([], "--option", help="method option key=value, repeatable"),
    cooperate: bool = typer.Option(
        False,
        "--cooperate",
        help="share OUT with other workers started with the same "
        "settings and --cooperate (e.g. cluster jobs): shards are claimed, never computed twice",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="log lines instead of a progress bar"),
) -> None:
    """Generate samples with their rewards into OUT: shards/, the sample table, the domain's own
    formats (FASTA, SDF, PNGs) and run.json. Domain options (e.g. --backbone FILE) follow the domain."""
    from ..rewards import RewardError
    from .executors import make_executor
    from .generation import RunError, RunSettings, ShardError
    from .generation import generate as run_generate
    from .jobs import DomainJob, ProcessJob, resolve_device
    from .plugins import PluginError
    from .rundir import RunLockedError

    extra = _domain_options(ctx.args)
    try:
        if (domain is None) == (process is None):
            raise ValueError(
                "name a domain (svdd generate DOMAIN ...) or your own model (--process module:factory), not both"
                if domain and process
                else "name a domain (see `svdd domains`) or your own model with --process module:factory"
            )
        _check_steps(steps)
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"--max-batch must be an integer >= 1; got {max_batch}")
        if workers < 1:
            raise ValueError(f"--workers must be an integer >= 1; got {workers}")
        if not str(out).strip() or str(out) == ".":
            raise ValueError(f"--out must name a directory for this run; got {str(out)!r}")
        job: Any
        if process is not None:
            if extra:
                raise ValueError(f"unknown option(s) {', '.join('--' + k for k in extra)}")
            job = ProcessJob(process=process, reward=reward, value=value, steps=steps)
            described: dict[str, Any] = {"process": process}
        else:
            job = DomainJob(
                domain=str(domain),
                reward=reward,
                value=value,
                steps=steps,
                device=resolve_device(device),
                options=extra,
            )
            described = {"domain": domain, **({"options": extra} if extra else {})}
        settings = RunSettings(
            num_samples=num_samples,
            method=method,
            num_candidates=num_candidates,
            alpha=alpha,
            seed=seed,
            shard_size=shard_size,
            max_batch=max_batch,
            options=_parse_options(option),
            description={**described, "reward": reward, "value": value, "steps": steps},
        )
        job.check()
        pool = make_executor(executor, workers, ray_address)
    except (ValueError, TypeError, ImportError, ConnectionError) as exc:
        _fail(str(exc))

    def log(msg):
        return typer.echo(msg, err=True)

    command = shlex.join(["svdd", *sys.argv[1:]])
    try:
        summary = run_generate(
            job,
            settings,
            out,
            executor=pool,
            progress=not quiet,
            log=log,
            table_format=table_format,
            command=command,
            cooperate=cooperate,
        )
    except (ValueError, TypeError, RewardError, PluginError, RunLockedError) as exc:
        _fail(str(exc))
    except (ShardError, MemoryError) as exc:  # the job's code failed in a shard, or ran out of memory
        what = str(exc) or "out of memory (MemoryError)"
        _fail(f"{what}; the shards written so far are kept: fix the cause and rerun the same command to resume")
    except RunError as exc:  # the job's code failed on its trial, before anything was written
        _fail(f"{exc}; nothing was written")
    except OSError as exc:  # a full disk, a vanished mount: one line; rerunning resumes
        where = f": {exc.filename}" if exc.filename and str(exc.filename) not in str(exc.strerror) else ""
        _fail(
            f"{exc.strerror or exc}{where} ({type(exc).__name__}, errno {exc.errno}); nothing half-written is kept: "
            "fix the cause and rerun the same command to resume"
        )
    finally:
        if pool is not None:
            pool.shutdown()
    if summary is None:  # a rank other than 0 of a multi-process launch: rank 0 writes the outputs
        typer.echo("this rank's shards are written; rank 0 merges the outputs")
        return
    record = summary.record
    typer.echo(
        f"{num_samples} samples in {out}: median reward {_fmt(record['reward_median'])}, "
        f"p90 {_fmt(record['reward_p90'])}, invalid {record['invalid_samples']}, "
        f"reward failures {record['reward_failures']}; files: {', '.join(record['outputs'])}"
    )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


@app.command("domains")
def list_domains() -> None:
    """List the installed domains, their rewards, value networks and options."""
    from .plugins import PluginError, domain_names, load_domain

    for name in domain_names():
        try:
            domain = load_domain(name)
        except PluginError as exc:
            typer.echo(f"{name}: unavailable ({exc})")
            continue
        typer.echo(f"{name}: {domain.summary}")
        try:
            typer.echo(
                f"  rewards: {', '.join(domain.rewards())}; --value mc for: {', '.join(domain.values()) or 'none'}"
            )
        except ImportError as exc:
            typer.echo(f"  (needs packages that are not installed: {exc}; {domain.requires})")
        if domain.options:
            typer.echo("  options: " + "; ".join(f"--{k}: {v}" for k, v in domain.options.items()))


@app.command("train-value")
def train_value(
    domain: str = typer.Argument(..., help="an installed domain (see `svdd domains`)"),
    reward: str = typer.Option(..., "--reward", "-r", help="a domain reward (name or name=arg) or module:callable"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="directory for rollouts, checkpoint and value.safetensors + value.json"
    ),
    rollouts: int = typer.Option(1024, "--rollouts", help="pretrained rollouts to learn from"),
    held_out: int = typer.Option(256, "--held-out", help="extra rollouts to measure the fit"),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(256, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    every: int = typer.Option(1, "--every", help="keep the state of every k-th step"),
    steps: int | None = typer.Option(None, "--steps", help="denoising steps (default: the domain's)"),
    seed: int = typer.Option(0, "--seed"),
    max_batch: int | None = typer.Option(None, "--max-batch", help="most rows per model call"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train an MC value network (SVDD-MC) for a domain and reward on rollouts of its pretrained model.

    Resumable: the rollouts and a per-epoch checkpoint are kept in OUT, so rerunning the same
    command continues where it stopped. Use the result with `svdd generate ... --value
    OUT/value.safetensors` (or `--value OUT`). The rollouts and checkpoint are read back as plain
    tensors and values only (never unpickled objects); a file that is not is refused.
    """
    import torch

    from ..processes.weights import load_checkpoint, save_checkpoint, write_weights
    from ..sampling.value_training import Rollouts, collect_rollouts, fit_value, value_correlation
    from .generation import environment
    from .plugins import PluginError, domain_reward, load_domain

    try:
        spec = load_domain(domain)
        reward_fn = domain_reward(spec, reward)
        for name, v in (
            ("rollouts", rollouts),
            ("held_out", held_out),
            ("epochs", epochs),
            ("every", every),
            ("batch_size", batch_size),
        ):
            if v < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1; got {v}")
        _check_steps(steps)
        if spec.value_net is None:
            raise ValueError(f"domain {domain!r} defines no value network architecture to train")
        out.mkdir(parents=True, exist_ok=True)
    except (ValueError, TypeError, OSError, PluginError) as exc:
        _fail(str(exc))
    process = spec.load_process(steps=steps, device="cpu")
    settings = {
        "domain": domain,
        "reward": reward,
        "rollouts": rollouts,
        "held_out": held_out,
        "every": every,
        "steps": len(process.timesteps),
        "seed": seed,
    }

    def rollouts_for(name: str, n: int, offset: int) -> Rollouts:
        path = out / f"{name}.pt"
        if path.exists():
            saved = load_checkpoint(path, "rollouts")
            if not isinstance(saved, dict) or "settings" not in saved or "rollouts" not in saved:
                raise ValueError(f"{path}: not the rollouts of `svdd train-value`; delete it or use another --out")
            if saved["settings"] != settings:
                raise ValueError(f"{path} was collected with other settings ({saved['settings']}); use another --out")
            return Rollouts.from_dict(saved["rollouts"], path)
        made = collect_rollouts(
            process,
            reward_fn,
            n,
            generator=torch.Generator().manual_seed(seed + offset),
            every=every,
            max_batch=max_batch,
            progress=not quiet,
        )
        save_checkpoint(path, {"settings": settings, "rollouts": made.to_dict()})
        return made

    try:
        train = rollouts_for("rollouts", rollouts, 0)
        held = rollouts_for("held_out", held_out, 1)
        torch.manual_seed(seed)
        net = spec.value_net(process)
        losses = fit_value(
            net,
            train,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            generator=torch.Generator().manual_seed(seed),
            progress=not quiet,
            checkpoint=out / "checkpoint.pt",
        )
    except ValueError as exc:  # a damaged, foreign or unsafe rollouts or checkpoint file (named)
        _fail(str(exc))
    corr = value_correlation(net, held)
    meta = {
        **settings,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "train_loss": losses,
        "held_out_correlation": {str(t): (None if c != c else float(c)) for t, c in zip(held.times, corr)},
        "command": shlex.join(["svdd", *sys.argv[1:]]),
        "environment": environment(),
    }
    record = {"class": type(net).__name__, "config": getattr(net, "config", {}), "metadata": meta}
    path = write_weights(out / "value", net.state_dict(), record)  # value.safetensors + value.json
    finite = [c for c in corr if c == c]
    low, high = (min(finite), max(finite)) if finite else (float("nan"), float("nan"))
    typer.echo(f"value network in {path}: final train MSE {losses[-1]:.4g}, held-out correlation {low:.3f}..{high:.3f}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":
    main()
