"""Domain plug-ins found through entry points; user objects named on the command line."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import svdd.runs.plugins
from svdd.runs.cli import app
from svdd.runs.plugins import Domain, PluginError, load_domain, load_object

TESTS = Path(__file__).resolve().parent
TOY = str(TESTS / "toy_plugin.py")
runner = CliRunner()
SMALL = ["-n", "4", "-M", "2", "--steps", "3", "--shard-size", "2", "--quiet"]


@pytest.fixture
def toy_domain(monkeypatch):
    """Registers tests/toy_plugin.py:DOMAIN in the `svdd.domains` entry-point group."""
    monkeypatch.syspath_prepend(str(TESTS))
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        found = list(real(**kw))
        if kw.get("group") == svdd.runs.plugins.ENTRY_POINT_GROUP:
            found.append(importlib.metadata.EntryPoint("toy", "toy_plugin:DOMAIN", svdd.runs.plugins.ENTRY_POINT_GROUP))
        return found

    monkeypatch.setattr(svdd.runs.plugins.importlib.metadata, "entry_points", entry_points)


def test_the_shipped_domains_are_entry_points_and_the_core_imports_none_of_them():
    names = svdd.runs.plugins.domain_names()
    assert {"dna", "rna", "molecules", "images"} <= set(names)
    for name in names:
        assert isinstance(load_domain(name), Domain)
    script = (
        "import sys, svdd, svdd.runs.cli, svdd.runs, svdd.runs.jobs; "
        "print([m for m in sys.modules if m.startswith('svdd.domains')])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_registered_plugin_runs_through_svdd_generate(toy_domain, tmp_path):
    assert "toy" in svdd.runs.plugins.domain_names()
    result = runner.invoke(
        app, ["generate", "toy", "--reward", "target=3", "--out", str(tmp_path), *SMALL, "--length", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "samples.csv").read_text().splitlines()
    assert lines[0] == "index,sample,reward,token_sum"
    for line in lines[1:]:
        _, sample, reward, token_sum = line.split(",")
        assert int(token_sum) == sum(map(int, sample.split())) and float(reward) == -abs(int(token_sum) - 3)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["settings"]["description"]["options"] == {"length": "3"}
    assert record["command"].startswith("svdd ")


def test_a_plugin_refuses_options_it_does_not_declare(toy_domain, tmp_path):
    result = runner.invoke(
        app, ["generate", "toy", "--reward", "weighted", "--out", str(tmp_path / "o"), *SMALL, "--backbone", "x.pdb"]
    )
    assert result.exit_code == 2
    assert "domain 'toy' has no option --backbone; its options: --length" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("reward", [f"{TOY}:weighted_sum", f"{TOY}:Target=1", "toy_plugin:Target"])
def test_process_factory_and_rewards_from_files_and_modules(tmp_path, reward, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    result = runner.invoke(
        app, ["generate", "--process", f"{TOY}:make_process", "--reward", reward, "--out", str(tmp_path), *SMALL]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in (tmp_path / "samples.csv").read_text().splitlines()[1:]]
    assert len(rows) == 4
    target = 1.0 if reward.endswith("=1") else 2.0
    for _, sample, value in rows:
        tokens = list(map(int, sample.split()))
        expected = (
            1.0 * tokens[0] + 0.7 * tokens[1] + 0.4 * tokens[2]
            if reward.endswith("weighted_sum")
            else -abs(sum(tokens) - target)
        )
        assert float(value) == pytest.approx(expected)


BROKEN = {
    "syntax.py": ("def reward(xs)\n    return xs\n", r"SyntaxError: expected ':' \(syntax\.py, line 1\)"),
    "raises.py": (
        "raise RuntimeError('no licence server')\n",
        "importing .*raises.py failed: RuntimeError: no licence server",
    ),
    "ctor.py": (
        "class R:\n    def __init__(self):\n        raise OSError('model file gone')\n",
        "calling R raised OSError: model file gone",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_user_reward_is_one_clear_line(tmp_path, name):
    source, message = BROKEN[name]
    (tmp_path / name).write_text(source)
    attr = "R" if name == "ctor.py" else "reward"
    result = runner.invoke(
        app, ["generate", "dna", "--reward", f"{tmp_path / name}:{attr}", "--out", str(tmp_path / "out"), *SMALL]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "out").exists()


def test_load_object_errors_name_the_spec(tmp_path):
    with pytest.raises(PluginError, match="no module named 'no_such_module_xyz'"):
        load_object("no_such_module_xyz:f")
    with pytest.raises(PluginError, match="has no attribute 'nope'"):
        load_object(f"{TOY}:nope")
    with pytest.raises(PluginError, match="must look like module:name"):
        load_object("just_a_name")
    assert load_object(f"{TOY}:Target=5").target == 5.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps must be an integer >= 1; got 0"),
        (["--alpha", "nan"], "alpha must be a finite number >= 0"),
        (["--option", "resample_fraction=abc"], "resample_fraction must be a number; got 'abc'"),
        (["--option", "foo=1"], "unknown option(s) for method 'svdd': foo"),
        (["--method", "dps"], "dps needs a differentiable reward"),
        (["--format", "xlsx"], "--format must be one of csv, parquet"),
    ],
)
def test_every_setting_is_checked_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "dna", "--reward", "gc", "--out", str(out), "-n", "2", "--quiet", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()
    fixed = runner.invoke(app, ["generate", "dna", "--reward", "gc", "--out", str(out), *SMALL])
    assert fixed.exit_code == 0, fixed.output  # the corrected command is not refused afterwards


def test_domain_or_process_is_required(tmp_path):
    result = runner.invoke(app, ["generate", "--reward", "gc", "--out", str(tmp_path / "o"), "-n", "2"])
    assert result.exit_code == 2 and "name a domain" in result.output


@pytest.mark.slow
def test_two_ranks_through_the_command_line(tmp_path):
    """RANK=1 used to crash in the CLI after its shards (AttributeError on None)."""
    args = [
        sys.executable,
        "-m",
        "svdd.runs.cli",
        "generate",
        "--process",
        f"{TOY}:make_process",
        "--reward",
        f"{TOY}:weighted_sum",
        "-n",
        "8",
        "-M",
        "2",
        "--shard-size",
        "2",
        "--quiet",
    ]
    clean = subprocess.run([*args, "--out", str(tmp_path / "one")], capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    procs = [
        subprocess.Popen(
            [*args, "--out", str(tmp_path / "two")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2"},
        )
        for r in (1, 0)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    assert "rank 0 merges the outputs" in outs[0][0]
    assert (tmp_path / "two" / "samples.csv").read_text() == (tmp_path / "one" / "samples.csv").read_text()
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2


def test_each_rank_of_a_launch_takes_its_own_gpu(monkeypatch):
    import torch

    from svdd.runs.jobs import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device(None) == "cuda:3" and resolve_device("cuda") == "cuda:3"
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device("cpu") == "cpu"  # an explicit choice wins
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert resolve_device(None) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="is not a torch device"):
        resolve_device("gpu0")
