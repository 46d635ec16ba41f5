"""A model, value, checkpoint or rollouts file that a user is handed never runs code.

Value networks travel between people (`svdd train-value` in one lab, `svdd generate --value`
in another). Each case here is such a file gone wrong, on purpose or by accident: a pickle
whose `__reduce__` makes a marker file, wrong tensor names, wrong shapes, another domain, a
truncated file, a file that is not a tensor file at all. Every one is one `error:` line naming
the file, with no traceback, before any sampling, and nothing is written to `--out`; the marker
never appears.
"""

from __future__ import annotations

import json
import pathlib
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import svdd
from svdd.processes.nets import ConvValue
from svdd.processes.training import train_masked
from svdd.processes.weights import (
    check_weights,
    load_checkpoint,
    load_net,
    read_weights,
    save_checkpoint,
    save_net,
    write_weights,
)
from svdd.runs.cli import app
from svdd.sampling.value_training import Rollouts, collect_rollouts, fit_value

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SMALL = ["-n", "2", "-M", "2", "--steps", "2", "--shard-size", "2", "--quiet"]


class Payload:
    """What a malicious pickle carries: a call made while the file is unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def crafted(path: Path, marker: Path, **extra) -> Path:
    """A torch file (zip + pickle) whose dictionary holds the payload next to plain entries."""
    torch.save(
        {"domain": "dna", "reward": "gc", "state_dict": {"w": torch.zeros(2)}, "x": Payload(marker), **extra}, path
    )
    return path


def cli(*args: str):
    """(exit code, the `error:` lines, all the output) of one `svdd` command."""
    result = runner.invoke(app, list(args))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    return result.exit_code, errors, result.output


def refused(out: Path, value: Path | str, domain: str = "dna") -> str:
    """The one `error:` line of `svdd generate DOMAIN --value VALUE`; nothing written to `out`."""
    code, errors, output = cli("generate", domain, "--reward", "gc", "--value", str(value), "--out", str(out), *SMALL)
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert not out.exists()
    return errors[0]


def dna_value(length: int = 150) -> ConvValue:
    """The architecture `svdd train-value dna` trains (the dna domain's value_net), seeded."""
    torch.manual_seed(0)
    return ConvValue(vocab_size=4, length=length, channels=64, num_blocks=4)


def value_files(path: Path, net: torch.nn.Module, domain: str = "dna", **changes) -> Path:
    """value.safetensors + value.json as `svdd train-value` writes them (record changes applied)."""
    record = {"class": "ConvValue", "config": net.config, "metadata": {"domain": domain, "reward": "gc"}, **changes}
    return write_weights(path, net.state_dict(), record)


# -- the crafted pickle -----------------------------------------------------------------------


def test_a_crafted_pickle_given_as_value_runs_nothing_and_is_one_error_line(tmp_path):
    marker = tmp_path / "marker"
    evil = crafted(tmp_path / "evil.pt", marker)
    error = refused(tmp_path / "out", evil)
    assert not marker.exists()
    assert str(evil) in error and "refused" in error and "could run code" in error
    # the same bytes under the new name are not a safetensors file either
    disguised = tmp_path / "evil.safetensors"
    disguised.write_bytes(evil.read_bytes())
    (tmp_path / "evil.json").write_text(json.dumps({"class": "ConvValue", "config": {}, "metadata": {"domain": "dna"}}))
    error = refused(tmp_path / "out", disguised)
    assert not marker.exists() and str(disguised) in error and "not a safetensors" in error


def test_a_crafted_pickle_as_train_value_checkpoint_or_rollouts_runs_nothing(tmp_path):
    out, marker = tmp_path / "v", tmp_path / "marker"
    args = ["train-value", "dna", "--reward", "gc", "--out", str(out), "--rollouts", "8", "--held-out", "4"]
    args += ["--steps", "2", "--batch-size", "16", "--quiet"]
    code, errors, output = cli(*args, "--epochs", "1")
    assert code == 0, output
    crafted(out / "checkpoint.pt", marker)
    code, errors, output = cli(*args, "--epochs", "2")
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert str(out / "checkpoint.pt") in errors[0] and "could run code" in errors[0]
    assert not marker.exists()
    (out / "checkpoint.pt").unlink()
    crafted(out / "rollouts.pt", marker)
    code, errors, output = cli(*args, "--epochs", "2")
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output
    assert str(out / "rollouts.pt") in errors[0] and "could run code" in errors[0]
    assert not marker.exists()
    (out / "rollouts.pt").write_bytes(b"\x80\x02 not a torch file")
    code, errors, output = cli(*args, "--epochs", "2")
    assert code == 2 and len(errors) == 1 and str(out / "rollouts.pt") in errors[0], output


def test_crafted_checkpoints_of_the_training_loops_run_nothing(tmp_path):
    marker = tmp_path / "marker"
    ckpt = crafted(tmp_path / "ckpt.pt", marker)
    net = ConvValue(vocab_size=3, length=4, channels=8, num_blocks=1)
    rollouts = Rollouts([torch.zeros(4, 4, dtype=torch.long)], [1.0], torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ".*could run code"):
        fit_value(net, rollouts, epochs=1, progress=False, checkpoint=ckpt)
    data = torch.randint(0, 3, (16, 4))
    with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ".*could run code"):
        train_masked(net_denoiser(), data, mask_index=3, steps=2, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="could run code"):
        load_net(ckpt)
    assert not marker.exists()


def net_denoiser():
    from svdd.processes.nets import ConvDenoiser

    return ConvDenoiser(vocab_size=3, length=4, channels=8, num_blocks=1)


def test_a_checkpoint_that_is_not_of_this_training_is_one_error_naming_it(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, {"model": {"w": torch.zeros(2)}})
    with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ": not a checkpoint of this training"):
        train_masked(
            net_denoiser(), torch.randint(0, 3, (16, 4)), mask_index=3, steps=2, checkpoint=ckpt, progress=False
        )
    ckpt.write_bytes(ckpt.read_bytes()[:50])  # truncated
    with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ": cannot read the training checkpoint"):
        train_masked(
            net_denoiser(), torch.randint(0, 3, (16, 4)), mask_index=3, steps=2, checkpoint=ckpt, progress=False
        )


def test_checkpoints_hold_plain_values_only(tmp_path):
    with pytest.raises(TypeError, match=r"state\['rollouts'\] is of type Payload"):
        save_checkpoint(tmp_path / "c.pt", {"rollouts": Payload(tmp_path / "marker")})
    assert not (tmp_path / "c.pt").exists() and not (tmp_path / "marker").exists()
    state = {"net": {"w": torch.ones(2)}, "losses": [0.5], "generator": torch.Generator().get_state(), "t": (1, None)}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["net"]["w"], state["net"]["w"]) and back["losses"] == [0.5] and back["t"] == (1, None)


# -- damaged and foreign value files ----------------------------------------------------------


def test_a_value_file_with_wrong_keys_or_shapes_is_one_error_line_and_out_untouched(tmp_path):
    net = dna_value()
    out = tmp_path / "out"
    # wrong keys: a tensor renamed, one added
    state = dict(net.state_dict())
    state["head.extra"] = state.pop("head.0.weight")
    write_weights(tmp_path / "keys", state, {"class": "ConvValue", "config": net.config, "metadata": {"domain": "dna"}})
    error = refused(out, tmp_path / "keys.safetensors")
    assert str(tmp_path / "keys.safetensors") in error and "1 missing (head.0.weight)" in error
    assert "1 unexpected (head.extra)" in error
    # wrong shapes, consistent with the record's config: found when the dna model is built, still before sampling
    value_files(tmp_path / "rna-shaped", dna_value(length=100))
    error = refused(out, tmp_path / "rna-shaped.safetensors")
    assert str(tmp_path / "rna-shaped.safetensors") in error and "has shape [100, 64]" in error
    assert "needs [150, 64]" in error
    # wrong shapes against the record's own config: found by the check, without building the model
    value_files(tmp_path / "edited", dna_value(length=100), config=dna_value().config)
    error = refused(out, tmp_path / "edited.safetensors")
    assert "has shape [100, 64]" in error and "needs [150, 64]" in error


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "not a safetensors weights file"),
        ("text", "not a safetensors weights file"),
        ("no record", "has no value.json next to it"),
        ("bad record", "not a JSON record"),
        ("other domain", "trained for domain 'rna', not 'dna'"),
        ("other class", "holds a network of class 'Evil'; the dna value network is a ConvValue"),
        ("absurd config", "its config does not build a ConvValue"),
    ],
)
def test_a_damaged_or_foreign_value_file_is_one_error_line(tmp_path, damage, message):
    path = value_files(tmp_path / "value", dna_value(), domain="rna" if damage == "other domain" else "dna")
    sidecar = tmp_path / "value.json"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "text":
        path.write_text("id,sequence\n0,ACGT\n")
    elif damage == "no record":
        sidecar.unlink()
    elif damage == "bad record":
        sidecar.write_text("{not json")
    elif damage in ("other class", "absurd config"):
        record = json.loads(sidecar.read_text())
        record.update({"class": "Evil"} if damage == "other class" else {"config": {"vocab_size": "x"}})
        sidecar.write_text(json.dumps(record))
    error = refused(tmp_path / "out", path)
    assert message in error and "value" in error, error


def test_a_missing_value_file_or_directory_is_named(tmp_path):
    assert "no value network at" in refused(tmp_path / "out", tmp_path / "nowhere.safetensors")
    (tmp_path / "empty").mkdir()
    assert "no value network in" in refused(tmp_path / "out", tmp_path / "empty")


def test_an_older_pt_value_file_of_plain_tensors_still_works(tmp_path):
    """The value.pt of an older `svdd train-value` ({domain, reward, state_dict, metadata}) is
    read with weights_only=True and guides generate like its safetensors conversion."""
    net = dna_value()
    torch.save(
        {"domain": "dna", "reward": "gc", "state_dict": net.state_dict(), "metadata": {"epochs": 1}},
        tmp_path / "value.pt",
    )
    value_files(tmp_path / "new", net)
    outs = []
    for value in (tmp_path / "value.pt", tmp_path / "new.safetensors"):
        out = tmp_path / f"out-{value.suffix}"
        code, _, output = cli("generate", "dna", "--reward", "gc", "--value", str(value), "--out", str(out), *SMALL)
        assert code == 0, output
        outs.append((out / "samples.csv").read_text())
    assert outs[0] == outs[1]


# -- the round trip ---------------------------------------------------------------------------


def test_a_trained_value_network_saved_and_reloaded_gives_identical_samples(tmp_path):
    from svdd.domains import sequences
    from svdd.runs.jobs import load_trained_value
    from svdd.runs.plugins import load_domain

    process = sequences.load_pretrained("dna-ars1", num_steps=4)
    reward = sequences.GCContent()
    rollouts = collect_rollouts(process, reward, 8, generator=torch.Generator().manual_seed(0), progress=False)
    net = dna_value()
    fit_value(net, rollouts, epochs=1, generator=torch.Generator().manual_seed(0), progress=False)
    save_net(net, tmp_path / "value", domain="dna", reward="gc")
    loaded, meta = load_net(tmp_path / "value.safetensors")
    assert meta == {"domain": "dna", "reward": "gc"}
    from_cli = load_trained_value(tmp_path / "value.safetensors", load_domain("dna"), process)

    def run(value):
        return svdd.sample(
            process,
            reward,
            method="svdd",
            value=value,
            num_samples=4,
            num_candidates=3,
            generator=torch.Generator().manual_seed(1),
            progress=False,
        ).samples

    in_memory = run(svdd.LearnedValue(net))
    assert run(svdd.LearnedValue(loaded)) == in_memory
    assert run(from_cli) == in_memory
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_weight_files_are_safetensors_with_a_json_record(tmp_path):
    net = ConvValue(vocab_size=4, length=12, channels=8, num_blocks=1)
    path = save_net(net, tmp_path / "v.pt", note="x")  # X.pt names the same pair of files
    assert path == tmp_path / "v.safetensors" and not (tmp_path / "v.pt").exists()
    record = json.loads((tmp_path / "v.json").read_text())
    assert record == {"class": "ConvValue", "config": json.loads(json.dumps(net.config)), "metadata": {"note": "x"}}
    state, read = read_weights(tmp_path / "v.json")
    assert read == record and set(state) == set(net.state_dict())
    check_weights(net, state, path)
    with pytest.raises(TypeError, match="cannot be stored"):
        save_net(net, tmp_path / "w", note=object())


# -- the repository ---------------------------------------------------------------------------


def test_nothing_loads_with_weights_only_false_and_no_pickled_weights_ship():
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for folder in ("svdd", "domains")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if "weights_only=False" in line
    ]
    assert not found, found
    assert not list(ROOT.glob("domains/*/weights/*.pt"))
    shipped = sorted(ROOT.glob("domains/*/weights/*.safetensors"))
    assert len(shipped) == 15
    pipelines = [p for p in ROOT.glob("domains/*/weights/*/*/*") if p.is_file() and p.suffix != ".json"]
    assert pipelines and all(p.suffix == ".safetensors" for p in pipelines), pipelines  # the diffusers folders
    assert all(p.with_suffix(".json").is_file() for p in shipped)
