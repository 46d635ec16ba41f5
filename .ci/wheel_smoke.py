"""Run from a folder outside the checkout, with only the wheel installed: every shipped file loads.

The README quick start, every shipped weight file through `svdd.processes.nets.load_net`
(safetensors + JSON; no pickled .pt may ship), every domain's `load_pretrained` and
`load_value`, and every reward class on a few decoded samples. A file missing from the wheel
fails here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

import svdd
import svdd.domains

here = Path.cwd()
assert "site-packages" in svdd.__file__, f"svdd imported from {svdd.__file__}, not the installed wheel"
assert "site-packages" in svdd.domains.__file__, svdd.domains.__file__

# README quick start
from svdd.processes import GaussianMixtureDiffusion  # noqa: E402

process = GaussianMixtureDiffusion(num_steps=20)
res = svdd.sample(process, lambda xs: [-(x - 3.0) ** 2 for x in xs], method="svdd", num_samples=8,
                  num_candidates=4, generator=torch.Generator().manual_seed(0), progress=False)
assert len(res.samples) == 8 and res.stats["model_calls"] > 0
print("quick start:", res)

# the wings' public names, and what this release added: uniform-noise diffusion, noise search, the
# transformer pipelines of diffusers (a tiny random one built here)
from svdd.diffusers import SVDDScheduler  # noqa: E402
from svdd.diffusers.tiny import tiny_dit  # noqa: E402
from svdd.processes import UniformToy  # noqa: E402
from svdd.runs import RunSettings, generate  # noqa: E402, F401
from svdd.sampling import METHODS  # noqa: E402

assert {"random_search", "zero_order", "svdd", "fk"} <= set(METHODS)
uniform = svdd.sample(UniformToy(torch.ones(27), num_steps=5), lambda xs: [float(sum(x)) for x in xs],
                      num_samples=4, num_candidates=3, progress=False)
assert len(uniform.samples) == 4
searched = svdd.sample(GaussianMixtureDiffusion(num_steps=5, eta=0.0), lambda xs: [-(x - 3.0) ** 2 for x in xs],
                       method="zero_order", num_samples=2, num_candidates=2, iterations=1, progress=False)
assert searched.stats["model_calls"] == (1 + 2) * 2 * 5
dit = tiny_dit()  # a transformer pipeline that needs no `transformers` (not in the user extras)
dit.scheduler = SVDDScheduler.from_pipeline(dit, reward=lambda ims: [float(i.mean()) for i in ims], num_candidates=2)
image = dit(class_labels=[1], guidance_scale=3.0, num_inference_steps=2, output_type="pt").images
assert image.shape == (1, 3, 8, 8) and dit.scheduler.config.eta == 1.0 and dit.scheduler.stats["steps"] == 2
print("uniform diffusion, noise search and the DiT drop-in ran from the wheel")


def decoded(proc, n=3):
    return svdd.sample(proc, lambda objs: [0.0] * len(objs), method="pretrained", num_samples=n,
                       generator=torch.Generator().manual_seed(0), progress=False)


def check_rewards(samples, rewards):
    for reward in rewards:
        values = np.asarray(reward(list(samples)), dtype=float)
        assert values.shape == (len(samples),), (reward, values.shape)
        print(f"  {svdd.rewards.reward_name(reward)}: {np.round(values, 3).tolist()}")


from svdd.domains import images, molecules, sequences  # noqa: E402
from svdd.domains.images.classifier import FashionCNN  # noqa: E402
from svdd.domains.images.value import ValueNet  # noqa: E402
from svdd.domains.sequences.oracle import ARS1CNN  # noqa: E402
from svdd.processes.nets import NETS  # noqa: E402
from svdd.processes.weights import load_net  # noqa: E402

# every shipped weight file, through the one loader (never unpickled)
root = Path(svdd.domains.__file__).parent
assert not list(root.rglob("*.pt")), f"pickled .pt files ship in the wheel: {list(root.rglob('*.pt'))}"
shipped_weights = sorted(root.glob("*/weights/*.safetensors"))
assert len(shipped_weights) == 15, shipped_weights
for path in shipped_weights:
    net, meta = load_net(path, nets={**NETS, "FashionCNN": FashionCNN, "ValueNet": ValueNet, "ARS1CNN": ARS1CNN})
    assert not net.training and meta, path
    print(f"  {path.relative_to(root)}: {type(net).__name__}, {sum(q.numel() for q in net.parameters())} parameters")

for name, value in (("dna-ars1", "dna-ars1-activity"), ("rna-hairpin", "rna-hairpin-mfe")):
    proc = sequences.load_pretrained(name, num_steps=2)
    out = decoded(proc)
    print(name, out.samples[0][:30], "...")
    v = sequences.load_value(value)
    assert isinstance(v, svdd.LearnedValue) and v(proc.prior(2), 1.0).shape == (2,)
    check_rewards(out.samples, [sequences.GCContent()] + (
        [sequences.ARS1Activity(), sequences.MotifScore()] if name == "dna-ars1"
        else [sequences.RNAFold(), sequences.RNAFold(ensemble=True)]))

mol = molecules.load_pretrained(num_steps=2)
out = decoded(mol)
print("molecules", out.samples)
for value in ("moses-selfies-docking", "moses-selfies-qed", "moses-selfies-sa"):
    v = molecules.load_value(value)
    assert isinstance(v, svdd.LearnedValue) and v(mol.prior(2), 1.0).shape == (2,)
check_rewards(["CC(=O)Oc1ccccc1C(=O)O", "not a molecule"],
              [molecules.QED(), molecules.SA(), molecules.SA(raw=True), molecules.LogP(), molecules.MolWeight()])
assert len(molecules.sample_smiles()) == 500
molecules.Docking("PARP1")  # receptor files from the dockstring wheel (not docked here: seconds per ligand)

img = images.load_pretrained(num_steps=2)
out = decoded(img, n=2)
for value in ("jpeg", "shirt"):
    v = images.load_value(value)
    assert isinstance(v, svdd.LearnedValue) and v(torch.zeros(2, 1, 32, 32), 10).shape == (2,)
check_rewards(out.samples, [images.JPEGCompressibility(), images.ClassifierReward("shirt")])
assert (Path(images.DDPM_DIR) / "training.json").exists()
from svdd.domains import proteins  # noqa: E402

for name in ("1ubi", "1ejg", "1cih", "1a0j"):
    prot = proteins.load_pretrained(name, num_steps=2)
    print(name, prot.length, "residues, native", prot.native[:20], "...")
out = decoded(proteins.load_pretrained("1ejg", num_steps=2), n=2)
check_rewards(out.samples, [proteins.load_reward(spec) for spec in
                            ("instability", "gravy", "pi=9", "charge", "aromaticity", "helix", "mpnn=1ejg")])
v = proteins.load_value("1ubi-instability")
assert isinstance(v, svdd.LearnedValue)
print("every domain loaded from the wheel in", os.getcwd())

# the DiT flow model: a standard DiTPipeline folder inside the installed package, and its process
from diffusers import DiTPipeline  # noqa: E402

from svdd.domains.images import DIT_FLOW_DIR  # noqa: E402

dit = DiTPipeline.from_pretrained(DIT_FLOW_DIR)
assert dit.transformer.config.in_channels == 4 and "site-packages" in str(DIT_FLOW_DIR)
flow = images.load_pretrained("fashion-mnist-dit-flow", num_steps=4)
res = svdd.sample(flow, images.JPEGCompressibility(), num_samples=2, num_candidates=2, progress=False)
assert res.states.shape == (2, 4, 8, 8) and res.samples[0].shape == (1, 32, 32)
print("the DiT flow model loads and samples from the wheel")
