"""The `svdd` command line: batch generation over the shipped domains.

    svdd generate molecules --reward qed --method svdd -M 10 -n 5000 --out runs/qed
    svdd generate dna --reward ars1 -n 1000 --out runs/ars1 --executor processes --workers 2
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Reward-guided sampling from pretrained diffusion models (SVDD).",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _commands() -> None:
    """Reward-guided sampling from pretrained diffusion models (SVDD)."""


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def _parse_options(options: list[str]) -> dict:
    parsed = {}
    for item in options:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            _fail(f"--option takes key=value (e.g. resample_fraction=0.05); got {item!r}")
        for cast in (int, float):
            try:
                parsed[key] = cast(raw)
                break
            except ValueError:
                continue
        else:
            parsed[key] = raw
    return parsed


@app.command()
def generate(
    domain: str = typer.Argument(..., help="images | dna | rna | molecules"),
    reward: str = typer.Option(..., "--reward", "-r", help="a shipped reward (name or name=arg) or module:callable"),
    num_samples: int = typer.Option(..., "-n", "--num-samples", help="samples to generate"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory (resumes a run already there)"),
    method: str = typer.Option("svdd", "--method", help="pretrained | best_of_n | svdd | svdd_r | smc | dps"),
    num_candidates: int = typer.Option(10, "-M", "--num-candidates", help="M, candidates per sample and step"),
    alpha: float = typer.Option(0.0, "--alpha", help="temperature; 0 keeps the best candidate"),
    value: str = typer.Option("pm", "--value", help="pm (posterior mean), mc (the shipped value network), "
                              "or the value.pt of `svdd train-value`"),
    steps: Optional[int] = typer.Option(None, "--steps", help="denoising steps (default: the domain's)"),
    seed: int = typer.Option(0, "--seed"),
    shard_size: int = typer.Option(64, "--shard-size", help="samples per shard (the unit of resumption)"),
    max_batch: Optional[int] = typer.Option(None, "--max-batch",
                                            help="most rows per model call and candidates held at once "
                                                 "(default: 64-row model calls on a CPU)"),
    executor: str = typer.Option("none", "--executor", help="none | processes | ray"),
    workers: int = typer.Option(2, "--workers", help="worker processes (processes, local ray)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="a Ray cluster address"),
    option: list[str] = typer.Option([], "--option", help="method option key=value, repeatable"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="log lines instead of a progress bar"),
) -> None:
    """Generate samples with their rewards into OUT: shards/, samples.csv (+ FASTA or PNGs), run.json."""
    from svdd.domains.registry import DomainJob, get_domain, resolve_reward, resolve_value
    from svdd.executors import make_executor
    from svdd.rewards import RewardError
    from svdd.runs import RunSettings, generate as run_generate
    from svdd.samplers import METHODS

    if method not in METHODS:
        _fail(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    try:
        settings = RunSettings(num_samples=num_samples, method=method, num_candidates=num_candidates, alpha=alpha,
                               seed=seed, shard_size=shard_size, max_batch=max_batch, options=_parse_options(option),
                               description={"domain": domain, "reward": reward, "value": value, "steps": steps})
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0; got {alpha}")
        get_domain(domain)
        resolve_reward(domain, reward)  # unknown names fail here, before any model is loaded
        resolve_value(domain, reward, value)
        pool = make_executor(executor, workers, ray_address)
    except (ValueError, TypeError, ImportError) as exc:
        _fail(str(exc))
    job = DomainJob(domain=domain, reward=reward, value=value, steps=steps)
    log = (lambda msg: typer.echo(msg, err=True))
    try:
        summary = run_generate(job, settings, out, executor=pool, progress=not quiet, finalize=job.finalize, log=log)
    except (ValueError, TypeError, PermissionError, RewardError) as exc:
        _fail(str(exc))
    finally:
        if pool is not None:
            pool.shutdown()
    record = summary.record
    typer.echo(f"{num_samples} samples in {out}: median reward {record['reward_median']}, "
               f"p90 {record['reward_p90']}, invalid {record['invalid_samples']}, "
               f"reward failures {record['reward_failures']}")


@app.command("train-value")
def train_value(
    domain: str = typer.Argument(..., help="images | dna | rna | molecules"),
    reward: str = typer.Option(..., "--reward", "-r", help="a shipped reward (name or name=arg) or module:callable"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for rollouts, checkpoint and value.pt"),
    rollouts: int = typer.Option(1024, "--rollouts", help="pretrained rollouts to learn from"),
    held_out: int = typer.Option(256, "--held-out", help="extra rollouts to measure the fit"),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(256, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    every: int = typer.Option(1, "--every", help="keep the state of every k-th step"),
    steps: Optional[int] = typer.Option(None, "--steps", help="denoising steps (default: the domain's)"),
    seed: int = typer.Option(0, "--seed"),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="most rows per model call"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train an MC value network (SVDD-MC) for a domain and reward on rollouts of its pretrained model.

    Resumable: the rollouts and a per-epoch checkpoint are kept in OUT, so rerunning the same
    command continues where it stopped. Use the result with `svdd generate ... --value OUT/value.pt`.
    """
    import json

    import torch

    from svdd.domains.registry import get_domain, resolve_reward
    from svdd.runs import environment, write_atomic
    from svdd.value_training import Rollouts, collect_rollouts, fit_value, value_correlation

    try:
        spec = get_domain(domain)
        reward_fn = resolve_reward(domain, reward)
        for name, v in (("rollouts", rollouts), ("held_out", held_out), ("epochs", epochs), ("every", every)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1; got {v}")
        out.mkdir(parents=True, exist_ok=True)
    except (ValueError, TypeError, OSError) as exc:
        _fail(str(exc))
    process = spec.process(steps)
    settings = {"domain": domain, "reward": reward, "rollouts": rollouts, "held_out": held_out, "every": every,
                "steps": len(process.timesteps), "seed": seed}

    def rollouts_for(name: str, n: int, offset: int) -> Rollouts:
        path = out / f"{name}.pt"
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=False)
            if saved["settings"] == settings:
                return saved["rollouts"]
            _fail(f"{path} was collected with other settings ({saved['settings']}); use another --out")
        made = collect_rollouts(process, reward_fn, n, generator=torch.Generator().manual_seed(seed + offset),
                                every=every, max_batch=max_batch, progress=not quiet)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"settings": settings, "rollouts": made}, tmp)
        tmp.replace(path)
        return made

    train = rollouts_for("rollouts", rollouts, 0)
    held = rollouts_for("held_out", held_out, 1)
    torch.manual_seed(seed)
    net = spec.value_net(process)
    losses = fit_value(net, train, epochs=epochs, batch_size=batch_size, lr=lr,
                       generator=torch.Generator().manual_seed(seed), progress=not quiet,
                       checkpoint=out / "checkpoint.pt")
    corr = value_correlation(net, held)
    meta = {**settings, "epochs": epochs, "lr": lr, "batch_size": batch_size, "train_loss": losses,
            "held_out_correlation": {str(t): (None if c != c else float(c)) for t, c in zip(held.times, corr)},
            "environment": environment()}
    torch.save({"domain": domain, "reward": reward, "state_dict": net.state_dict(), "metadata": meta},
               out / "value.pt")
    write_atomic(out / "value.json", json.dumps(meta, indent=1))
    finite = [c for c in corr if c == c]
    typer.echo(f"value network in {out / 'value.pt'}: final train MSE {losses[-1]:.4g}, "
               f"held-out correlation {min(finite) if finite else float('nan'):.3f}..{max(finite) if finite else float('nan'):.3f}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context,
          table: str = typer.Argument(..., help="the table to re-run, e.g. table1, curves, performance "
                                                 "(an unknown name lists them all)"),
          ) -> None:
    """Re-run a benchmark table (extra options such as --quick go to it); needs a source checkout.

    Results, plots and the command that made them go to benchmarks/results/ of the checkout.
    """
    import importlib.util
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    entry = root / "benchmarks" / "__main__.py"
    if not entry.exists():
        _fail(f"svdd bench runs the scripts in benchmarks/ of a source checkout; none next to {root}. "
              "Install from a clone (pip install -e .) to use it.")
    spec = importlib.util.spec_from_file_location("svdd_benchmarks_entry", entry)
    benchmarks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmarks)  # only reads its TABLES; the table itself runs in a subprocess
    if table not in benchmarks.TABLES:
        _fail(f"unknown benchmark table {table!r}; choose one of {', '.join(benchmarks.TABLES)}")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "benchmarks", table, *ctx.args], cwd=root))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":
    main()
