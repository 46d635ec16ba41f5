"""Performance part `loop`: the batched SVDD-PM of `svdd.sample` against a per-candidate loop.

The loop is the paper code's pattern (for each of the M candidates: one transition on the N
parents, a model call on N rows, denoise, decode, reward; then the best child per sample). Both
designs get the same per-sample generators: fraction of identical final samples and the speed
ratio loop/batched (N=64, M=10 on DNA and molecules; N=8 on images); the batched sampler is also
timed with max_batch=128. A control with `OneDrawPerRow` checks that the masked domains'
differences come from the order in which the generators are consumed. That the two designs keep
the same children for matched random streams is a test: tests/test_reference_loop.py.

    python -m benchmarks performance loop [--quick]
"""
from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import torch

import svdd
from svdd import rng
from svdd.sampling import select

from .report import loadavg, md_table
from .timing import Clock, label, load, per_sample_generators, warm_up

TITLE = "# Performance: batched SVDD-PM vs a per-candidate loop"
# Images: final samples whose pixels (in [0, 1]) differ by at most this much followed the same
# path (same winners at every step) and differ only by float rounding.
PIXEL_TOLERANCE = 1e-4
SETTINGS = {
    "full": {"domains": {"dna": {"N": 64, "M": 10, "K": 32}, "molecules": {"N": 64, "M": 10, "K": 32},
                         "images": {"N": 8, "M": 10, "K": 50}},
             "control": {"dna": {"N": 16, "M": 10, "K": 32}, "molecules": {"N": 16, "M": 10, "K": 32}},
             "chunk": 128},
    "quick": {"domains": {"dna": {"N": 4, "M": 3, "K": 4}, "molecules": {"N": 4, "M": 3, "K": 4},
                          "images": {"N": 2, "M": 3, "K": 3}},
              "control": {"dna": {"N": 4, "M": 3, "K": 4}, "molecules": {"N": 4, "M": 3, "K": 4}},
              "chunk": 4},
}


def per_candidate_loop(process: Any, reward: Any, n: int, m: int,
                       generators: list[torch.Generator]) -> tuple[list[Any], np.ndarray]:
    """SVDD-PM (α = 0) as a loop over the M candidates; returns (samples, rewards float64 [n]).

    Child j of every sample comes from one `transition` on the N parents; intermediate children
    are scored by reward(decode(denoised)), the last ones by their own reward; the winners are
    chosen by `svdd.sampling.selection.select` (NaN never wins; an all-NaN row draws from its generator).
    """
    ts, rows = list(process.timesteps), torch.arange(n)
    with torch.no_grad():
        x = process.prior(n, generators)
        out = process.model(x, ts[0])
        for k, t in enumerate(ts):
            t_next = ts[k + 1] if k + 1 < len(ts) else None
            children, outs, values, objects = [], [], [], []
            for _ in range(m):
                child = process.transition(x, t, out, generators)
                if t_next is None:
                    objects.append(list(process.decode(child)))
                else:
                    outs.append(process.model(child, t_next))
                    objects.append(list(process.decode(process.denoised(child, t_next, outs[-1]))))
                children.append(child)
                values.append(torch.as_tensor(np.asarray(reward(objects[-1]), dtype=np.float64)))
            table = torch.stack(values, dim=1)  # [n, M]
            pick = select(table, 0.0, generators).index
            x = torch.stack(children, dim=1)[rows, pick.to(x.device)]
            if t_next is not None:
                out = torch.stack(outs, dim=1)[rows, pick.to(x.device)]
    return [objects[j][i] for i, j in enumerate(pick.tolist())], table[rows, pick].numpy()


class OneDrawPerRow:
    """A masked-diffusion process whose `transition` makes ONE per-row random draw, not two.

    `MaskedDiffusion.transition` draws the keep-masked uniforms for all rows, then the token
    uniforms. With per-sample generators, the batched sampler's M children of sample i consume
    generator i as keep_0..keep_{M-1}, token_0..token_{M-1}, while the loop consumes it as keep_0,
    token_0, keep_1, ...: the same distribution, other numbers. This wrapper draws both uniforms
    of a row at once (rand [B, 2, L]), so child j is the j-th draw of generator i in both designs.
    """

    def __init__(self, base: Any):
        self.base, self.timesteps = base, base.timesteps
        self.prior, self.model, self.denoised, self.decode = base.prior, base.model, base.denoised, base.decode

    def transition(self, x: torch.Tensor, t: float, out: torch.Tensor, generator: Any = None) -> torch.Tensor:
        b = self.base
        u = rng.rand((x.shape[0], 2, *x.shape[1:]), generator, device=x.device)
        cdf = torch.softmax(out.to(torch.float64), dim=-1).cumsum(dim=-1)
        tokens = (cdf < u[:, 1].unsqueeze(-1) * cdf[..., -1:]).sum(dim=-1).clamp_max(b.vocab_size - 1)
        unmask = (x == b.mask_index) & (u[:, 0] >= b.next_time(t) / t)
        return torch.where(unmask, tokens, x)


def _same(a: Any, b: Any) -> bool:
    return bool(torch.equal(a, b)) if isinstance(a, torch.Tensor) else a == b


def _pixel_match(a: list, b: list, prefix: str) -> dict[str, Any]:
    diffs = [float((x - y).abs().max()) for x, y in zip(a, b)]
    close = sum(d <= PIXEL_TOLERANCE for d in diffs)
    return {f"{prefix}max_abs_pixel_diff": max(diffs), f"{prefix}same_path": close,
            f"{prefix}same_path_fraction": close / len(a)}


def compare_designs(process: Any, reward: Any, n: int, m: int, seed: int, chunk: int | None = None) -> dict[str, Any]:
    """Batched `svdd.sample` vs `per_candidate_loop` with fresh per-sample generators of the same seeds.

    With `chunk`, also times the batched sampler with max_batch=chunk (candidates handled in groups
    of about `chunk` rows) and checks that its samples equal those of max_batch=None.
    """
    def batched(max_batch: int | None) -> svdd.Result:
        return svdd.sample(process, reward, method="svdd", num_samples=n, num_candidates=m,
                           generator=per_sample_generators(n, seed), max_batch=max_batch, progress=False)

    load = {"start": loadavg()}
    with Clock() as cb:
        res = batched(None)
    with Clock() as cl:
        loop_samples, loop_rewards = per_candidate_loop(process, reward, n, m, per_sample_generators(n, seed))
    load["after_loop"] = loadavg()
    same = [_same(a, b) for a, b in zip(res.samples, loop_samples)]
    row: dict[str, Any] = {
        "N": n, "M": m, "K": len(process.timesteps), "batched_s": cb.wall, "loop_s": cl.wall,
        "speed_ratio": cl.wall / cb.wall, "batched_cpu_s": cb.cpu, "loop_cpu_s": cl.cpu,
        "cpu_speed_ratio": cl.cpu / cb.cpu, "core_share": min(cb.share, cl.share),
        "identical": sum(same), "identical_fraction": sum(same) / n,
        "batched_reward_median": float(np.nanmedian(res.rewards)),
        "loop_reward_median": float(np.nanmedian(loop_rewards)),
        "rewards_equal_where_identical": bool(np.array_equal(np.asarray(res.rewards)[same], loop_rewards[same],
                                                             equal_nan=True)),
    }
    images = isinstance(res.samples[0], torch.Tensor)
    if images:
        match = _pixel_match(res.samples, loop_samples, "")
        row.update(max_abs_pixel_diff=match["max_abs_pixel_diff"], same_up_to_float_noise=match["same_path"],
                   same_up_to_float_noise_fraction=match["same_path_fraction"])
    else:
        row["same_up_to_float_noise"], row["same_up_to_float_noise_fraction"] = sum(same), sum(same) / n
    if chunk is not None:
        with Clock() as cc:
            chunked = batched(chunk)
        row.update(chunk=chunk, chunked_s=cc.wall, chunked_cpu_s=cc.cpu, chunked_ratio=cc.wall / cb.wall,
                   chunked_cpu_ratio=cc.cpu / cb.cpu, core_share=min(row["core_share"], cc.share),
                   chunked_identical_fraction=sum(map(_same, res.samples, chunked.samples)) / n)
        if images:
            row.update(_pixel_match(res.samples, chunked.samples, "chunked_"))
            del row["chunked_same_path"]
        load["end"] = loadavg()
    row["loadavg"] = load
    return row


def _first_divergence(process: Any, n: int, m: int, seed: int) -> dict[str, Any]:
    """How much the UNet's output depends on the batch size: the first step's model output on the
    N prior states as N rows (as the loop's first call) and repeated as N·M rows (the batched calls)."""
    with torch.no_grad():
        x = process.prior(n, per_sample_generators(n, seed))
        t = process.timesteps[0]
        out = process.model(x, t)
        big = process.model(x.repeat_interleave(m, dim=0), t).view(n, m, *out.shape[1:])
    return {"first_step_model_max_abs_diff_batch_N_vs_NM": float((big - out.unsqueeze(1)).abs().max())}


def run(settings: dict[str, Any], args: argparse.Namespace) -> tuple[dict, str]:
    """Batched vs loop on DNA, molecules and images; plus the draw-order-matched control."""
    rows, controls, seed = [], [], args.seed
    for name, cfg in settings["domains"].items():
        process, reward = load(name, cfg["K"])
        warm_up(process, reward)
        row = {"domain": name, "label": label(name),
               **compare_designs(process, reward, cfg["N"], cfg["M"], seed, settings["chunk"])}
        if name == "images":
            row.update(_first_divergence(process, cfg["N"], cfg["M"], seed))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if name in settings["control"]:
            c = settings["control"][name]
            control = OneDrawPerRow(load(name, c["K"])[0])
            controls.append({"domain": name, "label": label(name),
                             **compare_designs(control, reward, c["N"], c["M"], seed)})
            print(json.dumps({"control": controls[-1]}), flush=True)
    return {"rows": rows, "controls": controls, "chunk": settings["chunk"]}, report(rows, controls, settings["chunk"])


# -------------------------------------------------------------------------------- report

def _times(r: dict) -> list[str]:
    return [f"{r['batched_s']:.2f} ({r['batched_cpu_s']:.2f})", f"{r['loop_s']:.2f} ({r['loop_cpu_s']:.2f})",
            f"{r['speed_ratio']:.2f}x ({r['cpu_speed_ratio']:.2f}x)"]


def report(rows: list[dict], controls: list[dict], chunk: int) -> str:
    """The markdown of the loop part from its rows."""
    lines = [
        "SVDD-PM (alpha = 0), max_batch=None. *Batched* = `svdd.sample` (all N·M children of a step in one "
        "transition, one model call, one decode and one reward call); *loop* = `per_candidate_loop` in "
        "benchmarks/loop.py, the paper code's pattern (for each of the M candidates: one transition on "
        "the N parents, a model call on N rows, denoise, decode, reward; then argmax per sample). Both use one "
        "generator per sample, `torch.Generator().manual_seed(1000 + i)`, fresh for each design.", "", "",
        f"*Identical* = bitwise equal final samples; *same path* = identical, or for images within "
        f"{PIXEL_TOLERANCE:g} in every pixel (the same winner at every step, differing only by float rounding).", "",
        "Times are wall (CPU) seconds; the ratios are given for both, CPU time being the steadier measure when "
        "other jobs compete for the cores (min core share = the lowest CPU/wall of the runs of that row).", ""]
    lines += md_table(["domain", "N", "M", "K", "batched (s)", "loop (s)", "loop / batched, wall (CPU)",
                       "identical samples", "same path", "min core share"],
                      [[r["label"], r["N"], r["M"], r["K"], *_times(r),
                        f"{r['identical']}/{r['N']} ({r['identical_fraction']:.0%})",
                        f"{r['same_up_to_float_noise']}/{r['N']} ({r['same_up_to_float_noise_fraction']:.0%})",
                        f"{r['core_share']:.2f}"] for r in rows])
    lines += ["", f"The batched sampler again with max_batch={chunk} (candidates made, scored and selected for groups "
              f"of max(1, {chunk} // M) samples, so model calls of at most ~{chunk} rows instead of N·M), same "
              "generators:", ""]
    lines += md_table(["domain", "batched, max_batch=None (s)", f"batched, max_batch={chunk} (s)", "ratio, wall (CPU)",
                       "samples identical to max_batch=None"],
                      [[r["label"], f"{r['batched_s']:.2f} ({r['batched_cpu_s']:.2f})",
                        f"{r['chunked_s']:.2f} ({r['chunked_cpu_s']:.2f})",
                        f"{r['chunked_ratio']:.2f}x ({r['chunked_cpu_ratio']:.2f}x)",
                        f"{r['chunked_identical_fraction']:.0%}" + (
                            f"; same path {r['chunked_same_path_fraction']:.0%} (max pixel diff "
                            f"{r['chunked_max_abs_pixel_diff']:.2g})" if "chunked_max_abs_pixel_diff" in r else "")]
                       for r in rows])
    lines += ["", "Load average (1 min) at the start of each domain's timings: "
              + ", ".join(f"{r['label']} {r['loadavg']['start'][0] if r['loadavg']['start'] else '?'}" for r in rows)
              + " (2 cores; other jobs share the machine, so single timings carry noise)."]
    if controls:
        lines += ["", "Control: the same comparison on the masked domains with `OneDrawPerRow`, the masked process "
                  "with both uniforms of a transition drawn in one per-row draw (same distribution), so that child j "
                  "of sample i is the j-th draw of generator i in both designs:", ""]
        lines += md_table(["domain", "N", "M", "K", "batched (s)", "loop (s)", "loop / batched, wall (CPU)",
                           "identical samples"],
                          [[r["label"], r["N"], r["M"], r["K"], *_times(r),
                            f"{r['identical']}/{r['N']} ({r['identical_fraction']:.0%})"] for r in controls])
    lines += ["", "## Why samples differ", "", *_why_samples_differ(rows, controls)]
    lines += ["", "## Speed", "", *_speed(rows)]
    return "\n".join(lines) + "\n"


def _speed(rows: list[dict]) -> list[str]:
    """What the loop/batched ratios say, from the CPU-time ratios (the steadier measure)."""
    out = []
    for r in rows:
        loop, chunked = r["cpu_speed_ratio"], r.get("chunked_cpu_ratio")
        text = f"- {r['label']} (N={r['N']}, M={r['M']}): loop / batched = {loop:.2f}x in CPU time"
        if loop < 1:
            text += (f": the loop is FASTER. Its model calls have N={r['N']} rows; the batched sampler's have "
                     f"N·M={r['N'] * r['M']}, and on this CPU the denoiser costs more per row in such large calls "
                     "(likely because a large call's activations no longer fit in the CPU caches; see the model "
                     "ms/row in performance_scaling.md).")
        elif loop < 1.1:
            text += ": about the same; the work per row dominates and batching saves only per-call costs."
        else:
            text += ": batching pays (fewer, larger calls amortise per-call costs of the model and the scheduler)."
        if chunked is not None:
            recovers = chunked < 0.95 and loop < 1
            text += (f" The batched sampler with max_batch={r['chunk']} takes {chunked:.2f}x the CPU time of "
                     "max_batch=None" + (", i.e. capping the call size recovers the loss." if recovers else "."))
        out.append(text)
    return out


def _why_samples_differ(rows: list[dict], controls: list[dict]) -> list[str]:
    out = []
    if any(r["identical_fraction"] < 1 for r in rows if r["domain"] in ("dna", "molecules")):
        ctl = ", ".join(f"{r['label']} {r['identical']}/{r['N']}" for r in controls)
        out.append(
            "- Masked domains (DNA, molecules): `MaskedDiffusion.transition` makes two draws per row (the "
            "keep-masked uniforms for the whole batch, then the token uniforms). In the batched design sample "
            "i's M children are consecutive rows drawing from generator i, which yields keep_0..keep_{M-1} and "
            "then token_0..token_{M-1}; the loop takes keep_j, token_j for child j. Same distribution, different "
            "numbers, so the loop's samples are an independent draw rather than a copy: the identical fraction "
            f"above measures this, not a bug. The control removes only this ordering difference: {ctl} identical.")
    for r in rows:
        if r["domain"] != "images" or r["identical_fraction"] == 1:
            continue
        n, same = r["N"], r["same_up_to_float_noise"]
        text = (f"- Images: the DDPM step draws one noise tensor per row, so the random numbers match, but the UNet "
                f"gives slightly different floats for a batch of N·M rows than for N rows (first step: max abs "
                f"difference {r['first_step_model_max_abs_diff_batch_N_vs_NM']:.2e}), so the final images are not "
                f"bitwise equal. {same}/{n} followed the same path (every pixel within {PIXEL_TOLERANCE:g}).")
        if same < n:
            text += (f" The other {n - same} diverged: JPEG sizes are whole bytes, so children often tie, and a "
                     "rounding difference that moves one quantized pixel can change a size and hence the winner; "
                     f"from there the runs differ (largest pixel difference {r['max_abs_pixel_diff']:.3g}).")
        out.append(text)
    out += [f"- Control, {r['label']}: {r['N'] - r['identical']} of {r['N']} samples still differ: the denoiser's "
            "logits for a batch of N·M rows differ in the last bits from those for N rows, which can move a token "
            "draw across a CDF boundary or flip an argmax in x0_hat, and the runs diverge from there."
            for r in controls if r["identical_fraction"] < 1]
    return out or ["- All samples are identical."]


def summary(d: dict[str, Any]) -> list[str]:
    """The part's section of performance.md."""
    return ["## Batched vs per-candidate loop", "",
            *md_table(["domain", "N", "M", "K", "batched CPU (s)", "loop CPU (s)", "loop / batched, CPU (wall)",
                       "batched max_batch=128 / None, CPU", "identical", "same path"],
                      [[r["label"] + (" (control, one draw per row)" if control else ""), r["N"], r["M"], r["K"],
                        f"{r['batched_cpu_s']:.1f}", f"{r['loop_cpu_s']:.1f}",
                        f"{r['cpu_speed_ratio']:.2f}x ({r['speed_ratio']:.2f}x)",
                        f"{r['chunked_cpu_ratio']:.2f}x" if "chunked_cpu_ratio" in r else "",
                        f"{r['identical_fraction']:.0%}", f"{r['same_up_to_float_noise_fraction']:.0%}"]
                       for control, group in ((False, d["rows"]), (True, d["controls"])) for r in group]),
            "", "Masked domains: the batched sampler and the loop consume each sample's generator in a different "
            "order (two draws per transition), so their samples are independent draws; the control with one "
            "draw per row gives identical samples. Images: same path, differing only by float rounding. "
            "Details: performance_loop.md."]


def key_points(d: dict[str, Any]) -> list[str]:
    rows, out = d["rows"], []
    slow = [r for r in rows if r["cpu_speed_ratio"] < 1]
    if slow:
        out.append("- With max_batch=None the batched sampler is SLOWER than the per-candidate loop on "
                   + ", ".join(f"{r['label']} ({r['cpu_speed_ratio']:.2f}x)" for r in slow)
                   + ": on a CPU a model call of N·M rows costs more per row than one of N rows. Capping the "
                   "call size (max_batch=128) cuts the batched CPU time to "
                   + ", ".join(f"{r['chunked_cpu_ratio']:.2f}x" for r in slow) + " of that.")
    fast = [r for r in rows if r["cpu_speed_ratio"] >= 1]
    if fast:
        out.append("- The loop is slower than the batched sampler on "
                   + ", ".join(f"{r['label']} ({r['cpu_speed_ratio']:.2f}x)" for r in fast) + ".")
    return out
