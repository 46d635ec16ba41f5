"""The images domain's two shipped models through one interface: `load_pretrained(name)`, the
`svdd generate images --model ...` options, and value networks sized to each model's states."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers", reason="the images domain needs the `images` extra (diffusers)")

import svdd
from svdd.domains.images import load_pipeline, load_pretrained
from svdd.domains.images.pretrained import NULL_CLASS
from svdd.domains.images.rewards import ClassifierReward
from svdd.domains.images.value import load_value, value_metadata
from svdd.runs.plugins import load_domain

DIT = "fashion-mnist-dit-flow"


@pytest.fixture(scope="module")
def domain():
    return load_domain("images")


def test_the_dit_flow_model_is_a_process_over_its_latents(domain):
    process = domain.load_process(steps=8, model=DIT)
    assert process.sample_shape == (4, 8, 8) and len(process.timesteps) == 8
    res = svdd.sample(process, ClassifierReward("shirt"), num_samples=2, num_candidates=2,
                      generator=torch.Generator().manual_seed(0), progress=False)  # fmt: skip
    assert res.states.shape == (2, 4, 8, 8) and all(img.shape == (1, 32, 32) for img in res.samples)
    assert res.stats["model_calls"] == 2 + 7 * 2 * 2  # pretrained first step, then N·M per step


def test_a_class_label_conditions_the_dit(domain):
    trousers = svdd.sample(domain.load_process(steps=20, model=DIT, class_label="trouser"), ClassifierReward("trouser"),
                           method="pretrained", num_samples=8, generator=torch.Generator().manual_seed(0),
                           progress=False)  # fmt: skip
    unconditional = svdd.sample(domain.load_process(steps=20, model=DIT), ClassifierReward("trouser"),
                                method="pretrained", num_samples=8, generator=torch.Generator().manual_seed(0),
                                progress=False)  # fmt: skip
    assert trousers.rewards.mean() > unconditional.rewards.mean()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"modle": DIT}, "unknown images options \\['modle'\\]"),
        ({"model": "sd15"}, "unknown images model 'sd15'"),
        ({"class_label": "shirt"}, "conditions the DiT flow model only"),
        ({"model": DIT, "class_label": "hat"}, "unknown Fashion-MNIST class 'hat'"),
    ],
)
def test_bad_options_are_refused_by_name(domain, options, message):
    with pytest.raises(ValueError, match=message):
        domain.load_process(steps=4, **options)


def test_a_folder_of_another_pipeline_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ValueError, match="holds a StableDiffusionPipeline; the images domain loads DDPMPipeline"):
        load_pipeline(tmp_path)
    with pytest.raises(ValueError, match="class_label must be a Fashion-MNIST class 0-9"):
        load_pretrained(DIT, num_steps=4, class_label=12)
    assert NULL_CLASS == 1000


def test_each_model_gets_values_shaped_for_its_states(domain):
    dit = domain.load_process(steps=4, model=DIT)
    assert domain.value_net(dit).config["in_channels"] == 4
    assert domain.value_net(domain.load_process(steps=4)).config["in_channels"] == 1
    for reward in ("jpeg", "shirt"):
        meta = value_metadata(f"dit-flow-{reward}")
        assert meta["pretrained"].endswith("dit_flow") and meta["num_train_rollouts"] >= 256
        values = load_value(f"dit-flow-{reward}")(torch.randn(3, 4, 8, 8), 500.0)
        assert values.shape == (3,) and torch.isfinite(values).all()
    assert set(domain.values(model=DIT)) == {"jpeg", "classifier=shirt"}
    assert domain.values(model=DIT, class_label="shirt") == {}  # trained on unconditional rollouts
