"""The benchmarks' shared modules: every task resolves through the domain plug-ins, the method
registry refuses what cannot run, the writer's tables, and the loop benchmark's per-candidate
loop keeps the batched sampler's children on a process that draws once per row.

The benchmarks live in the repository, not in the installed package: they run from a clone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import toy_probs, weighted_sum

import svdd
from benchmarks import report
from benchmarks.loop import OneDrawPerRow, per_candidate_loop
from benchmarks.methods import METHODS, run_method
from benchmarks.tasks import TASKS, Task
from benchmarks.timing import per_sample_generators
from svdd.processes.toys import MaskedToy
from svdd.runs.plugins import load_domain


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_names_a_shipped_reward_and_value_of_an_installed_domain(name):
    spec = TASKS[name]
    domain = load_domain(spec.domain)
    assert spec.reward.partition("=")[0] in domain.rewards()
    assert spec.reward in domain.values()  # SVDD-MC and the SMC value of docking use it
    assert spec.smc_alpha > 0


def test_dps_runs_only_where_a_task_has_a_differentiable_surrogate():
    runnable = {name for name, spec in TASKS.items() if METHODS["dps"].unavailable(spec) is None}
    assert runnable == {"images_shirt", "images_flow_shirt"}  # the DiT's through its VAE decoder
    assert "discrete" in TASKS["dna_ars1"].dps_unavailable


def test_run_method_refuses_an_unknown_method_and_one_that_cannot_run():
    pytest.importorskip("svdd.domains.sequences")
    task = Task("dna_ars1", steps=2)
    with pytest.raises(ValueError, match="unknown method 'beam2'"):
        run_method(task, "beam2", num_samples=2, num_candidates=2, seed=0)
    with pytest.raises(ValueError, match="dps cannot run on dna_ars1: the states are discrete"):
        run_method(task, "dps", num_samples=2, num_candidates=2, seed=0)
    res = run_method(task, "svdd_mc", num_samples=3, num_candidates=2, seed=0, max_batch=None)
    assert len(res.samples) == 3 and res.stats["value_calls"] > 0
    assert task.diversity(res) > 0 and task.naturalness(res)["elbo_nats"] < 0


def test_md_table_writes_blank_cells_as_empty_columns():
    lines = report.md_table(["method", "median", "calls"], [["SVDD-PM", "1.2", 40], ["DPS", "n/a", ""]])
    assert lines == ["| method | median | calls |", "|---|---|---|", "| SVDD-PM | 1.2 | 40 |", "| DPS | n/a | |"]
    assert report.fmt(float("nan")) == "n/a" and report.fmt(0.12345) == "0.123"


def nan_when_first_token_is_zero(seqs):
    return [math.nan if s[0] == 0 else r for s, r in zip(seqs, weighted_sum(seqs))]


@pytest.mark.parametrize("reward", [weighted_sum, nan_when_first_token_is_zero])
def test_the_per_candidate_loop_keeps_the_batched_children_when_each_row_draws_once(reward):
    process = OneDrawPerRow(MaskedToy(toy_probs(), vocab_size=3, length=3, num_steps=3))
    n, m = 12, 4
    samples, rewards = per_candidate_loop(process, reward, n, m, per_sample_generators(n, 3))
    res = svdd.sample(
        process,
        reward,
        method="svdd",
        num_samples=n,
        num_candidates=m,
        generator=per_sample_generators(n, 3),
        max_batch=None,
        progress=False,
    )
    assert [tuple(s) for s in samples] == [tuple(s) for s in res.samples]
    np.testing.assert_array_equal(rewards, res.rewards)  # NaN where every child was invalid
    other, _ = per_candidate_loop(process, reward, n, m, per_sample_generators(n, 50))
    assert [tuple(s) for s in other] != [tuple(s) for s in samples]


def test_every_swept_method_tries_three_alphas_and_tilted_methods_only_positive_ones():
    from benchmarks.methods import alpha_grid

    spec = TASKS["dna_ars1"]
    grids = {m: alpha_grid(m, spec) for m in METHODS}
    assert {len(g) for g in grids.values() if g} == {3}
    assert grids["pretrained"] == grids["best_of_n"] == []
    assert all(a > 0 for m in ("smc", "fk") for a in grids[m])
    assert grids["svdd_pm"][0] == 0.0


def test_choose_alpha_takes_the_best_median_among_diverse_points_else_the_most_unique():
    from benchmarks.budgets import choose_alpha

    points = [
        {"alpha": 0.0, "median": 2.0, "unique": 0.5},
        {"alpha": 0.1, "median": 1.0, "unique": 0.97},
        {"alpha": 1.0, "median": 0.5, "unique": 1.0},
    ]
    assert choose_alpha(points, 0.95)[0] == 0.1
    assert choose_alpha(points, 0.0)[0] == 0.0
    collapsed = [{"alpha": 0.01, "median": 3.0, "unique": 0.4}, {"alpha": 0.1, "median": 1.0, "unique": 0.8}]
    alpha, why = choose_alpha(collapsed, 0.95)
    assert alpha == 0.1 and "most unique" in why


def test_pareto_front_keeps_only_points_no_cheaper_point_beats():
    from benchmarks.budgets import best_within, pareto

    pts = [
        {"method": "a", "median": 1.0, "unique": 1.0, "reward_calls": 10},
        {"method": "b", "median": 0.5, "unique": 1.0, "reward_calls": 20},
        {"method": "c", "median": 2.0, "unique": 1.0, "reward_calls": 40},
        {"method": "d", "median": 3.0, "unique": 0.2, "reward_calls": 30},
    ]
    assert [p["method"] for p in pareto(pts, "reward_calls", 0.95)] == ["a", "c"]
    assert [p["method"] for p in pareto(pts, "reward_calls")] == ["a", "d"]
    assert best_within(pts, "reward_calls", 25, 0.95)["method"] == "a"
    assert best_within(pts, "reward_calls", 5) is None


def test_refine_gets_the_model_calls_of_svdd_pm_at_the_same_budget():
    pytest.importorskip("svdd.domains.sequences")
    task = Task("dna_ars1", steps=16)
    calls = {
        m: run_method(task, m, num_samples=4, num_candidates=8, seed=0).stats["model_calls"]
        for m in ("svdd_pm", "refine", "beam", "fk", "best_of_n")
    }
    assert calls["beam"] == calls["svdd_pm"]
    assert calls["fk"] == calls["best_of_n"] == 4 * 8 * 16
    assert abs(calls["refine"] - calls["svdd_pm"]) <= 0.05 * calls["svdd_pm"]


def test_seed_editing_takes_a_domains_own_seeds_and_keeps_other_domains_rows(tmp_path):
    import json

    from benchmarks.seed_editing import merged, pick_seeds

    domain = {"seeds": ["AAA", "CCC"], "reward": lambda xs: [float(len(set(x))) for x in xs]}
    assert pick_seeds(domain, 1) == [("AAA", 1.0)]
    old = {
        "meta": {"command": "old", "num_samples": 32, "num_candidates": 10, "total_wall_time_s": 5.0},
        "rows": [{"domain": "dna", "median": 1.0}, {"domain": "proteins", "median": 2.0}],
    }
    (tmp_path / "seed_editing.json").write_text(json.dumps(old))
    new = [{"domain": "proteins", "median": 3.0, "num_samples": 16, "num_candidates": 8}]
    rows, meta = merged(tmp_path / "seed_editing.json", new, {"command": "new"})
    assert [(r["domain"], r["median"], r["num_samples"]) for r in rows] == [("dna", 1.0, 32), ("proteins", 3.0, 16)]
    assert meta["earlier_runs"][0]["command"] == "old"


def test_diversity_target_calls_a_hair_above_best_of_n_a_tie():
    from benchmarks.curves_report import diversity_target

    def rows(pm_median: float) -> list[dict]:
        return [
            {"method": "pretrained", "median": -0.82, "diversity": 0.61, "alpha": None},
            {"method": "best_of_n", "median": -0.7185, "diversity": 0.47, "alpha": None},
            {"method": "svdd_pm", "median": pm_median, "diversity": 0.614, "alpha": 0.06},
        ]

    hits, text = diversity_target(rows(-0.718))
    assert hits == [] and "NOT met" in text and "a tie at α = 0.06" in text
    hits, text = diversity_target(rows(-0.65))
    assert [r["alpha"] for r in hits] == [0.06] and "**met**" in text
