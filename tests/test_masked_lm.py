"""`MaskedDiffusion.from_masked_lm`: third-party masked models (tiny random-weight `transformers`
models built offline from configs, and plain callables) wrapped into the native contract."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from conftest import seeded, toy_probs, weighted_sum

import svdd
from svdd.processes.masked import MaskedDiffusion
from svdd.processes.toys import ExactChain, PosteriorDenoiser, total_variation
from svdd.processes.training import elbo

transformers = pytest.importorskip("transformers", reason="transformers is in the dev extra")

# ESM-2's vocabulary (33 ids): <cls>=0, <pad>=1, <eos>=2, <unk>=3, 20 amino acids among the rest, <mask>=32
ESM_TOKENS = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]
AMINO = {tok: i for i, tok in enumerate(ESM_TOKENS) if tok in set("ACDEFGHIKLMNPQRSTVWY")}
CLS, PAD, EOS, MASK = 0, 1, 2, 32
EXCLUDED = [i for i in range(33) if i not in AMINO.values()]


def tiny_esm(special_bias: float = 0.0) -> torch.nn.Module:
    """A random-weight 1-layer EsmForMaskedLM; `special_bias` is added to every excluded id's logit."""
    config = transformers.EsmConfig(
        vocab_size=33,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=PAD,
        mask_token_id=MASK,
        position_embedding_type="rotary",
    )
    torch.manual_seed(0)
    model = transformers.EsmForMaskedLM(config).eval()
    with torch.no_grad():
        model.lm_head.bias[EXCLUDED] += special_bias
    return model


def tiny_bert() -> torch.nn.Module:
    config = transformers.BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    torch.manual_seed(1)
    return transformers.BertForMaskedLM(config).eval()


def hydrophobic_fraction(seqs):
    """A reward nobody trained the model for: the fraction of A I L M F V W residues."""
    return [sum(c in "AILMFVW" for c in s) / len(s) for s in seqs]


def run_chain(process, n, seed=0):
    """Ancestral sampling by hand: every intermediate state, checking carry-over on the way."""
    x, gen = process.prior(n), seeded(seed)
    for t in process.timesteps:
        x_next = process.transition(x, t, process.model(x, t), gen)
        was_clean = x != process.mask_index
        assert torch.equal(x_next[was_clean], x[was_clean])  # unmasked tokens are carried over
        x = x_next
    return x


def test_esm_only_generates_token_ids_and_never_changes_fixed_positions():
    model = tiny_esm(special_bias=5.0)
    raw = model(torch.full((1, 12), MASK)).logits
    assert set(raw.argmax(-1).flatten().tolist()) <= set(EXCLUDED)  # unrestricted, specials would win
    fixed = {0: CLS, 5: AMINO["W"], -1: EOS}  # <cls>, a one-residue motif, <eos>
    process = MaskedDiffusion.from_masked_lm(
        model, mask_token_id=MASK, token_ids=AMINO, length=12, num_steps=5, fixed=fixed
    )
    assert (process.length, process.vocab_size) == (9, 20)
    x = run_chain(process, 64)
    ids = process.to_model_ids(x)
    assert (ids[:, 0] == CLS).all() and (ids[:, 5] == AMINO["W"]).all() and (ids[:, 11] == EOS).all()
    assert torch.isin(ids[:, 1:11], torch.tensor(list(AMINO.values()))).all()
    strings = process.decode(x)  # names of free positions and the motif, specials skipped
    assert all(len(s) == 10 and s[4] == "W" and set(s) <= set(AMINO) for s in strings)
    assert len(set(strings)) > 50


def test_subs_output_excludes_the_mask_and_gives_unmasked_positions_probability_one():
    process = MaskedDiffusion.from_masked_lm(
        tiny_esm(special_bias=5.0), mask_token_id=MASK, token_ids=AMINO, length=8, num_steps=4
    )
    x = process.prior(3)
    x[:, :4] = torch.tensor([0, 5, 19, 7])
    out = process.model(x, 0.5)
    assert out.shape == (3, 8, 20)
    assert torch.allclose(out[:, 4:].logsumexp(-1), torch.zeros(3, 4), atol=1e-5)  # normalised at masked rows
    probs = out[:, :4].exp()
    assert torch.equal(probs.argmax(-1), x[:, :4]) and torch.allclose(probs.sum(-1), torch.ones(3, 4))
    raw = MaskedDiffusion.from_masked_lm(
        tiny_esm(special_bias=5.0), mask_token_id=MASK, token_ids=AMINO, length=8, num_steps=4, subs=False
    ).model(x, 0.5)
    assert torch.allclose(raw.log_softmax(-1)[:, 4:], out[:, 4:], atol=1e-5)
    assert not torch.allclose(raw[:, :4].log_softmax(-1), out[:, :4].clamp_min(-1e9))


def test_bert_with_pads_gets_the_attention_mask_of_its_padded_positions():
    model = tiny_bert()
    seen = []
    model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs.get("attention_mask")), with_kwargs=True
    )
    fixed = {0: 2, **{p: 0 for p in range(7, 10)}}  # [CLS]-like prefix, then 3 pads after 6 designed tokens
    kw = {"mask_token_id": 4, "token_ids": list(range(5, 30)), "length": 10, "num_steps": 3, "fixed": fixed}
    padded = MaskedDiffusion.from_masked_lm(model, pad_token_id=0, **kw)
    x = run_chain(padded, 8)
    assert padded.length == 6 and x.shape == (8, 6)
    assert seen and all(torch.equal(m, torch.tensor([[1] * 7 + [0] * 3] * m.shape[0])) for m in seen)
    unpadded = MaskedDiffusion.from_masked_lm(model, **kw)  # the model then attends to the pads too
    state = padded.prior(2)
    assert not torch.allclose(padded.model(state, 1.0), unpadded.model(state, 1.0))


class Recorder:
    """A plain callable model over a 7-id vocabulary that records how it was called."""

    def __init__(self):
        self.calls = []

    def __call__(self, ids, *args, **kwargs):
        self.calls.append((ids.clone(), args, kwargs))
        return torch.zeros(ids.shape[0], ids.shape[1], 7)


@pytest.mark.parametrize(
    ("time", "extra", "expected"),
    [
        (None, {}, None),
        ("continuous", {}, torch.tensor([0.75, 0.75])),
        ("discrete", {"num_train_timesteps": 1000}, torch.tensor([750, 750])),
        (lambda t: -torch.log1p(-t), {}, -torch.log1p(-torch.tensor([0.75, 0.75]))),
    ],
)
def test_time_input_forms(time, extra, expected):
    model = Recorder()
    process = MaskedDiffusion.from_masked_lm(
        model, mask_token_id=6, token_ids=[1, 2, 3], length=4, num_steps=4, time=time, **extra
    )
    process.model(process.prior(2), process.timesteps[1])
    _, args, kwargs = model.calls[-1]
    assert kwargs == {}
    if expected is None:
        assert args == ()
    else:
        assert len(args) == 1 and args[0].dtype == expected.dtype and torch.allclose(args[0], expected)
    keyword = MaskedDiffusion.from_masked_lm(
        model, mask_token_id=6, token_ids=[1, 2, 3], length=4, time="continuous", time_keyword="timesteps"
    )
    keyword.model(keyword.prior(2), 1.0)
    assert model.calls[-1][1] == () and torch.equal(model.calls[-1][2]["timesteps"], torch.ones(2))


class ForeignPosterior:
    """The exact toy denoiser (tokens 0..2, mask 3, L = 3) behind a foreign interface: a 9-id
    vocabulary in another order, <cls>/<eos> around the sequence, a mask id inside the vocabulary,
    and large logits on special ids and the mask that the adapter must exclude."""

    VOCAB: ClassVar[dict[str, int]] = {
        "<cls>": 0,
        "c": 1,
        "<pad>": 2,
        "a": 3,
        "<eos>": 4,
        "<unk>": 5,
        "b": 6,
        "<mask>": 7,
        ".": 8,
    }

    def __init__(self):
        self.native = PosteriorDenoiser(toy_probs(), 3, 3)
        self.to_native = torch.full((9,), -1, dtype=torch.long)
        for native, name in enumerate("abc"):
            self.to_native[self.VOCAB[name]] = native
        self.to_native[self.VOCAB["<mask>"]] = 3

    def __call__(self, ids):
        x = self.to_native[ids[:, 1:-1]]
        assert (x >= 0).all()
        logits = torch.full((ids.shape[0], 5, 9), 50.0, dtype=torch.float64)  # specials would dominate
        logits[:, 1:-1, [self.VOCAB[c] for c in "abc"]] = self.native(x, torch.zeros(len(x)))
        return {"logits": logits}


def native_logits(x, t):
    """The toy posterior as a ProteinMPNN-like callable: logits over exactly the 3 tokens, mask id 3."""
    return ForeignPosterior().native(x, t)


@pytest.mark.parametrize("kind", ["vocab", "tokens"])
def test_svdd_exactness_holds_through_the_adapter(chain, toy_rewards, kind):
    v = ForeignPosterior.VOCAB
    if kind == "vocab":
        process = MaskedDiffusion.from_masked_lm(
            ForeignPosterior(),
            mask_token_id=v["<mask>"],
            token_ids={c: v[c] for c in "abc"},
            length=5,
            num_steps=3,
            fixed={0: v["<cls>"], -1: v["<eos>"]},
        )
        assert process.decode(torch.tensor([[0, 2, 1]])) == ["acb"]
    else:
        process = MaskedDiffusion.from_masked_lm(
            native_logits,
            mask_token_id=3,
            token_ids=range(3),
            length=3,
            num_steps=3,
            logits_over="tokens",
            time="continuous",
        )
    adapted = ExactChain(process)
    for k_adapted, k_native in zip(adapted.kernels, chain.kernels):
        assert torch.allclose(k_adapted, k_native, atol=1e-12)
    alpha = 1.0
    value = svdd.LearnedValue(adapted.value_function(toy_rewards, alpha))
    process.decode = lambda x0: [tuple(row) for row in x0.tolist()]  # the reward reads native ids
    res = svdd.sample(
        process,
        weighted_sum,
        method="svdd",
        value=value,
        num_samples=3000,
        num_candidates=32,
        alpha=alpha,
        generator=seeded(1),
        progress=False,
    )
    target = chain.target(toy_rewards, alpha)
    assert total_variation(chain.pretrained(), target) > 0.25
    assert total_variation(chain.distribution_of(res.samples), target) < 0.06


def test_elbo_through_the_adapter_equals_the_native_elbo(masked_toy):
    v = ForeignPosterior.VOCAB
    process = MaskedDiffusion.from_masked_lm(
        ForeignPosterior(),
        mask_token_id=v["<mask>"],
        token_ids=[v[c] for c in "abc"],
        length=5,
        num_steps=3,
        fixed={0: v["<cls>"], -1: v["<eos>"]},
    )
    x0 = torch.tensor([[0, 1, 2], [1, 1, 0], [0, 0, 0]])
    native = elbo(masked_toy, x0, num_times=8)
    assert torch.isfinite(native).all() and torch.allclose(elbo(process, x0, num_times=8), native)


def test_svdd_raises_an_undesigned_reward_above_the_pretrained_90th_percentile():
    process = MaskedDiffusion.from_masked_lm(
        tiny_esm(), mask_token_id=MASK, token_ids=AMINO, length=22, num_steps=8, fixed={0: CLS, -1: EOS}
    )
    kw = {"generator": seeded(0), "progress": False}
    pre = svdd.sample(process, hydrophobic_fraction, method="pretrained", num_samples=128, **kw)
    guided = svdd.sample(process, hydrophobic_fraction, method="svdd", num_samples=32, num_candidates=8, **kw)
    assert np.median(guided.rewards) > np.quantile(pre.rewards, 0.9)


def test_an_adapter_process_edits_a_seed():
    process = MaskedDiffusion.from_masked_lm(
        tiny_esm(), mask_token_id=MASK, token_ids=AMINO, length=12, num_steps=10, fixed={0: CLS, -1: EOS}
    )
    seed = "MKTAYIAKQR"
    edited = process.from_seed(process.encode([CLS] + [AMINO[c] for c in seed] + [EOS]), positions=[0, 4, 9])
    assert edited.timesteps[0] == pytest.approx(0.3) and len(edited.timesteps) == 3
    res = svdd.sample(
        edited, hydrophobic_fraction, num_samples=8, num_candidates=4, generator=seeded(0), progress=False
    )
    assert all(s[i] == seed[i] for s in res.samples for i in range(10) if i not in (0, 4, 9))
    ids = edited.to_model_ids(res.states)
    assert (ids[:, 0] == CLS).all() and (ids[:, -1] == EOS).all()
    assert (edited.hamming_to_seed(res.states) <= 3).all()


def test_mdlm_style_raw_logits_with_a_sigma_time_input():
    class RawMDLM(torch.nn.Module):
        """Logits over 4 tokens + the mask (id 4, the last), the mask logit largest, time as sigma."""

        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 5)

        def forward(self, ids, sigma):
            assert sigma.dtype == torch.float32 and (sigma > 0).all()
            out = self.embed(ids) + sigma[:, None, None]
            return out + torch.tensor([0.0, 0.0, 0.0, 0.0, 100.0])

    torch.manual_seed(0)
    process = MaskedDiffusion.from_masked_lm(
        RawMDLM().eval(),
        mask_token_id=4,
        token_ids=range(4),
        length=10,
        num_steps=4,
        time=lambda t: -torch.log1p(-(1 - 1e-3) * t).float(),
    )
    x = run_chain(process, 16)
    assert not (x == process.mask_index).any() and x.max() <= 3


def test_encode_inverts_to_model_ids_and_checks_its_input():
    fixed = {0: CLS, -1: EOS}
    process = MaskedDiffusion.from_masked_lm(
        tiny_esm(), mask_token_id=MASK, token_ids=AMINO, length=7, num_steps=4, fixed=fixed
    )
    states = torch.randint(0, 20, (4, 5), generator=seeded(0))
    assert torch.equal(process.encode(process.to_model_ids(states)), states)
    seed_ids = [CLS] + [AMINO[c] for c in "MKTAY"] + [EOS]
    assert process.decode(process.encode(seed_ids).unsqueeze(0)) == ["MKTAY"]
    with pytest.raises(ValueError, match=r"differ from the fixed ids at positions \[6\]"):
        process.encode([CLS] + [AMINO[c] for c in "MKTAY"] + [PAD])
    with pytest.raises(ValueError, match=r"ids \[3\] at free positions"):
        process.encode([CLS, 3] + [AMINO[c] for c in "KTAY"] + [EOS])


def test_default_decode_uses_tokenizer_names_or_tuples(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(ESM_TOKENS))
    tokenizer = transformers.EsmTokenizer(str(vocab))
    ids = list(AMINO.values())
    named = MaskedDiffusion.from_masked_lm(
        tiny_esm(),
        mask_token_id=tokenizer.mask_token_id,
        token_ids=ids,
        length=5,
        num_steps=2,
        fixed={0: tokenizer.cls_token_id},
        tokenizer=tokenizer,
    )
    seed = tokenizer("MKTA")["input_ids"][:5]  # <cls> M K T A
    assert named.decode(named.encode(seed).unsqueeze(0)) == ["MKTA"]
    plain = MaskedDiffusion.from_masked_lm(
        tiny_esm(), mask_token_id=MASK, token_ids=ids, length=5, num_steps=2, fixed={0: CLS}
    )
    assert plain.decode(plain.encode(seed).unsqueeze(0)) == [tuple(seed[1:])]
    custom = MaskedDiffusion.from_masked_lm(
        tiny_esm(),
        mask_token_id=MASK,
        token_ids=ids,
        length=5,
        num_steps=2,
        fixed={0: CLS},
        decode=lambda rows: tokenizer.batch_decode(rows),
    )
    assert custom.decode(custom.encode(seed).unsqueeze(0)) == ["<cls> M K T A"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"token_ids": [5, 32]}, ValueError, "must not contain the mask id 32"),
        ({"token_ids": []}, ValueError, "token_ids is empty"),
        ({"token_ids": [5, 5]}, ValueError, "distinct"),
        ({"token_ids": "ACD"}, TypeError, "sequence of ints or a mapping"),
        ({"fixed": {9: CLS}}, ValueError, "fixed position 9 is outside the 6 positions"),
        ({"fixed": {0: CLS, -6: EOS}}, ValueError, "given twice"),
        ({"fixed": {0: MASK}}, ValueError, "holds the mask id"),
        ({"fixed": dict.fromkeys(range(6), CLS)}, ValueError, "nothing is left to generate"),
        ({"time": "sigma"}, ValueError, "time must be None"),
        ({"time": "discrete"}, ValueError, "num_train_timesteps must be an int >= 1"),
        ({"num_train_timesteps": 10}, ValueError, "only used with time='discrete'"),
        ({"logits_over": "all"}, ValueError, "logits_over must be 'vocab' or 'tokens'"),
        ({"pad_token_id": 5}, ValueError, "pad_token_id 5 must be neither"),
        ({"length": 0}, ValueError, "length must be an int >= 1"),
        ({"subs": "yes"}, TypeError, "subs must be True or False"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(kwargs, error, message):
    base = {"mask_token_id": MASK, "token_ids": [5, 6, 7], "length": 6, "num_steps": 2, **kwargs}
    with pytest.raises(error, match=message):
        MaskedDiffusion.from_masked_lm(tiny_esm(), **base)


def test_training_mode_and_wrong_logits_are_clear_errors():
    model = tiny_esm().train()
    with pytest.raises(ValueError, match=r"training mode .* call model.eval\(\)"):
        MaskedDiffusion.from_masked_lm(model, mask_token_id=MASK, token_ids=AMINO, length=6)
    process = MaskedDiffusion.from_masked_lm(model.eval(), mask_token_id=MASK, token_ids=AMINO, length=6)
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        process.model(process.prior(1), 1.0)
    short = MaskedDiffusion.from_masked_lm(
        lambda ids: torch.zeros(ids.shape[0], ids.shape[1], 10), mask_token_id=32, token_ids=[5, 12], length=4
    )
    with pytest.raises(ValueError, match="logits over 10 ids but token_ids go up to 12"):
        short.model(short.prior(1), 1.0)
    tokens = MaskedDiffusion.from_masked_lm(
        lambda ids: torch.zeros(ids.shape[0], ids.shape[1], 3),
        mask_token_id=2,
        token_ids=[0, 1],
        length=4,
        logits_over="tokens",
    )
    with pytest.raises(ValueError, match="needs logits over the 2 token_ids; the model returned 3"):
        tokens.model(tokens.prior(1), 1.0)
    odd = MaskedDiffusion.from_masked_lm(lambda ids: "logits", mask_token_id=2, token_ids=[0, 1], length=4)
    with pytest.raises(TypeError, match="expected a logits tensor"):
        odd.model(odd.prior(1), 1.0)
