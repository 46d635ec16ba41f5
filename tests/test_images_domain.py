"""Images domain: shipped weights load offline; rewards are correct, batched and NaN-safe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the images domain needs the `images` extra (diffusers)")
PIL = pytest.importorskip("PIL", reason="the images domain needs the `images` extra (pillow)")
from PIL import Image  # noqa: E402

import svdd  # noqa: E402
from svdd.domains.images import (  # noqa: E402
    CLASS_NAMES,
    DDPM_DIR,
    ClassifierReward,
    JPEGCompressibility,
    load_pipeline,
    load_pretrained,
    load_value,
    value_metadata,
)


def noise(n, seed=0, shape=(1, 32, 32)):
    return list(torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed)))


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline()


def test_pretrained_loads_offline_from_the_repo(pipe, monkeypatch):
    from diffusers import DDPMScheduler, UNet2DModel

    assert isinstance(pipe.unet, UNet2DModel) and isinstance(pipe.scheduler, DDPMScheduler)
    assert pipe.unet.config.sample_size == 32 and pipe.unet.config.in_channels == 1
    assert pipe.scheduler.config.num_train_timesteps == 1000
    n_params = sum(p.numel() for p in pipe.unet.parameters())
    assert n_params < 2_000_000  # "a few MB" of weights
    assert json.loads((DDPM_DIR / "training.json").read_text())["step"] > 1000


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_pipeline(tmp_path)
    with pytest.raises(ValueError, match="available"):
        load_value("no-such-reward")


def test_jpeg_blank_compresses_better_than_noise():
    r = JPEGCompressibility()
    blank = [torch.zeros(1, 32, 32), torch.ones(1, 32, 32)]
    scores = r(blank + noise(3))
    assert scores.shape == (5,) and scores.dtype == np.float64
    assert np.all(scores < 0)  # negative size in kB
    assert scores[:2].min() > scores[2:].max() + 0.5


def test_jpeg_accepts_tensors_arrays_pil_and_a_batch_tensor():
    r = JPEGCompressibility()
    x = noise(1)[0]
    as_uint8 = (x[0] * 255).round().to(torch.uint8).numpy()
    same = r([x, as_uint8, x[0].numpy(), Image.fromarray(as_uint8)])
    assert np.allclose(same, same[0])
    assert np.allclose(r(torch.stack(noise(4))), r(noise(4)))
    assert np.isfinite(r([torch.rand(3, 32, 32), np.zeros((32, 32, 3), np.uint8)])).all()


def test_invalid_images_score_nan_without_crashing_the_batch():
    bad = torch.zeros(1, 32, 32)
    bad[0, 3, 4] = float("nan")
    for reward in (JPEGCompressibility(), ClassifierReward("bag")):
        scores = reward([torch.zeros(1, 32, 32), bad, torch.full((1, 32, 32), float("inf"))])
        assert np.isfinite(scores[0]) and np.isnan(scores[1:]).all()


@pytest.mark.parametrize("bad", ["not an image", 3.0, torch.zeros(2, 5, 32, 32)[0], np.zeros((32, 32), dtype=object)])
def test_wrong_input_type_is_a_clear_error(bad):
    for reward in (JPEGCompressibility(), ClassifierReward(0)):
        with pytest.raises(TypeError, match="(?i)accepted|list of images"):
            reward([bad])


def test_classifier_reward_is_a_log_probability_and_accepts_class_names():
    images = [*noise(4), torch.zeros(1, 32, 32)]
    total = np.zeros(len(images))
    for k, name in enumerate(CLASS_NAMES):
        scores = ClassifierReward(name)(images)
        assert np.all(scores <= 0)
        total += np.exp(scores)
        assert np.allclose(scores, ClassifierReward(k)(images))
    assert np.allclose(total, 1.0)
    assert ClassifierReward("Ankle boot").class_index == ClassifierReward("ankle_boot").class_index == 9
    assert ClassifierReward("T-shirt/top").class_index == 0
    with pytest.raises(ValueError, match="sneaker"):
        ClassifierReward("hat")
    with pytest.raises(ValueError, match="index"):
        ClassifierReward(10)


def test_classifier_recognizes_a_drawn_trouser_over_a_bag():
    # two vertical bars with a waistband on black: a crude pair of trousers
    x = torch.zeros(1, 32, 32)
    x[0, 4:8, 10:22] = 0.8
    x[0, 4:29, 10:15] = 0.8
    x[0, 4:29, 17:22] = 0.8
    log_p = ClassifierReward("trouser").log_probs([x])[0]
    assert log_p.argmax() == CLASS_NAMES.index("trouser")


def test_pretrained_samples_decode_to_images(pipe):
    out = pipe(batch_size=3, num_inference_steps=4, generator=torch.Generator().manual_seed(0), output_type="np").images
    assert out.shape == (3, 32, 32, 1) and out.min() >= 0 and out.max() <= 1
    scores = JPEGCompressibility()(list(out))
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_guided_sampling_through_the_adapter(pipe):
    process = load_pretrained(num_steps=3, pipeline=pipe)
    assert process.pipeline is pipe
    for method, value in (("pretrained", None), ("svdd", None), ("svdd", load_value("jpeg"))):
        res = svdd.sample(
            process,
            JPEGCompressibility(),
            method=method,
            value=value,
            num_samples=2,
            num_candidates=2,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
        assert len(res.samples) == 2 and np.isfinite(res.rewards).all()
        for img in res.samples:
            assert img.shape == (1, 32, 32) and img.min() >= 0 and img.max() <= 1


def test_mc_value_loads_and_scores_states():
    value = load_value("jpeg")
    assert isinstance(value, svdd.LearnedValue)
    x = torch.randn(5, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    values = value(x, 500)
    assert values.shape == (5,) and torch.isfinite(values).all()
    meta = value_metadata("jpeg")
    assert meta["num_train_rollouts"] >= 256
    assert np.nanmean(meta["val_correlation"][-5:]) > 0.5  # near t = 0 it predicts the reward


def test_shirt_value_ships_with_its_training_record():
    meta = value_metadata("shirt")
    assert meta["reward"] == "log_p(shirt)" and meta["num_train_rollouts"] >= 256
    assert np.nanmean(meta["val_correlation"][-5:]) > 0.5
    values = load_value("shirt")(torch.zeros(3, 1, 32, 32), 100)
    assert values.shape == (3,) and torch.isfinite(values).all()


def test_negative_elbo_ranks_model_samples_above_noise(pipe):
    from svdd.domains.images.likelihood import negative_elbo

    samples = svdd.sample(
        load_pretrained(num_steps=10, pipeline=pipe),
        JPEGCompressibility(),
        method="pretrained",
        num_samples=3,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    ).states
    uniform = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ours = negative_elbo(pipe, samples.clamp(-1, 1), num_times=8)
    theirs = negative_elbo(pipe, uniform, num_times=8)
    assert ours.shape == (3,) and (ours > 0).all()
    assert ours.max() < theirs.min()  # uniform noise is far less likely under the DDPM
    with pytest.raises(ValueError, match=r"\[n, C, H, W\]"):
        negative_elbo(pipe, torch.zeros(3, 32, 32))
