"""Every rate the verdicts and the gate state, checked by seeded simulation: the gate's false-alarm rate per
strategy and for the whole gate, the verdict's rejection rate under the null, the coverage of the seed-only
and the search-space intervals, and the printed power. Tolerances are a few Monte Carlo standard errors."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.gate import regression
from harness.gate.regression import Baseline, Outcome, StrategyBaseline
from harness.reports import compare as cmp
from harness.scoring import stats


def _mc_se(p: float, reps: int) -> float:
    return math.sqrt(p * (1 - p) / reps)


def _paired_t(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, low, high) of the paired t-test for every row of d at once, checked against stats.paired_t_test on
    the first rows (the rule the verdict uses), so thousands of draws take milliseconds."""
    n = d.shape[1]
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / math.sqrt(n)
    p = 2 * sps.t.sf(np.abs(mean / se), n - 1)
    half = sps.t.ppf(0.975, n - 1) * se
    for i in range(20):
        test = stats.paired_t_test(d[i])
        assert (test.p, test.low, test.high) == pytest.approx((p[i], mean[i] - half[i], mean[i] + half[i]), rel=1e-9)
    return p, mean - half, mean + half


def _baseline(taus: dict[str, np.ndarray]) -> Baseline:
    return Baseline("regress", {name: StrategyBaseline(list(range(len(t))), [float(x) for x in t], float(np.mean(t)),
                                                       float(np.std(t, ddof=1))) for name, t in taus.items()})


@pytest.mark.parametrize("names", [("ws",), ("ws", "dinas")])
def test_gate_false_alarm_rate_under_the_null_is_the_stated_one(names):
    """No change: baseline (4 seeds) and fresh seeds (4) draw taus from one normal; the gate fails a
    strategy at its stated per-strategy rate, and the whole gate at most 1 - (1 - a)^m. The gate's own
    check() decides the first draws; the rest use its tolerance() arithmetic, vectorized."""
    rng = np.random.default_rng(11)
    reps, k, a, m = 40000, 4, regression.FALSE_ALARM, len(names)
    base = rng.normal(0.25, 0.06, (reps, m, k))
    now = rng.normal(0.25, 0.06, (reps, m, k))
    if m > 1:
        sd = np.sqrt(base.var(axis=2, ddof=1).mean(axis=1, keepdims=True))  # pooled, equal seed counts
        df = m * (k - 1)
    else:
        sd, df = base.std(axis=2, ddof=1), k - 1
    tol = stats.one_sided_t(a, df) * sd * math.sqrt(2 / k)
    fails = base.mean(axis=2) - now.mean(axis=2) > tol
    for r in range(60):  # the vectorized rule is the gate's rule
        baseline = _baseline({n: base[r, j] for j, n in enumerate(names)})
        fresh = [Outcome(n, 100 + s, float(now[r, j, s]), 1.0) for j, n in enumerate(names) for s in range(k)]
        failures, _notes = regression.check(baseline, fresh)
        assert sorted(f.split(":")[0] for f in failures) == sorted(n for j, n in enumerate(names) if fails[r, j])
        for j, n in enumerate(names):
            assert regression.tolerance(baseline, n, k) == pytest.approx(tol[r, 0 if m > 1 else j])
    rate = fails.mean()
    assert abs(rate - a) < 3.5 * _mc_se(a, reps * m)
    stated_whole = stats.whole_gate_false_alarm(a, m)
    whole = fails.any(axis=1).mean()
    assert whole < stated_whole + 3.5 * _mc_se(stated_whole, reps)
    if m == 2:  # a shared pooled sd makes the two tests positively dependent: a bit below independence, above a
        assert whole > a + 3.5 * _mc_se(a, reps)


def test_the_old_z_rule_with_a_four_seed_sd_false_alarms_twice_as_often():
    """What the t quantile fixes: z_{0.95} with the baseline's 3-df sd fails unchanged code ~9.9% of the time."""
    rng = np.random.default_rng(12)
    base, now = rng.normal(size=(20000, 4)), rng.normal(size=(20000, 4))
    sd = base.std(axis=1, ddof=1)
    z_rate = np.mean(base.mean(1) - now.mean(1) > 1.6448536 * sd * math.sqrt(0.5))
    t_rate = np.mean(base.mean(1) - now.mean(1) > stats.one_sided_t(0.05, 3) * sd * math.sqrt(0.5))
    assert abs(z_rate - 0.0993) < 0.007 and abs(t_rate - 0.05) < 0.005


@pytest.mark.parametrize("n", [3, 5, 10])
def test_verdict_rejects_at_five_percent_under_the_null_and_interval_agrees_with_p(n):
    rng = np.random.default_rng(20 + n)
    reps = 40000
    p, low, high = _paired_t(rng.normal(0.0, 0.044, (reps, n)))
    assert abs(np.mean(p < 0.05) - 0.05) < 3.5 * _mc_se(0.05, reps)
    assert np.array_equal(p < 0.05, (low > 0) | (high < 0))


@pytest.mark.parametrize("n", [5, 10])
def test_paired_t_interval_covers_at_least_93_percent(n):
    rng = np.random.default_rng(30 + n)
    reps, true_mean = 40000, 0.03
    _p, low, high = _paired_t(rng.normal(true_mean, 0.044, (reps, n)))
    coverage = np.mean((low <= true_mean) & (true_mean <= high))
    assert coverage >= 0.93 and abs(coverage - 0.95) < 3.5 * _mc_se(0.95, reps)


# ---- both noise sources: seeds and the architecture sample -------------------------------------------------
SEED_NOISE = (0.6, 1.0, 1.4)  # each seed's estimate noise, shared by both strategies on that seed (the pairing)
ARCH_NOISE = {"a": 0.8, "b": 1.1}  # each strategy's architecture-specific error, fixed across seeds


def _population_tau(arch_noise: float) -> float:
    """E over seeds of the search-space Kendall tau of estimate = truth + arch error + seed error against truth,
    all normal: 2/pi asin(corr) per seed noise, averaged over the seed-noise levels."""
    return float(np.mean([2 / math.pi * math.asin(1 / math.sqrt(1 + arch_noise ** 2 + s ** 2)) for s in SEED_NOISE]))


def _taus(est: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Kendall tau of each row of est against truth (no ties: continuous draws), all rows at once."""
    n = len(truth)
    st = np.sign(truth[:, None] - truth[None, :])
    se = np.sign(est[:, :, None] - est[:, None, :])
    return (se * st).sum(axis=(1, 2)) / (n * (n - 1))


def _dataset(rng, n_seeds: int, n_archs: int):
    truth = rng.normal(size=n_archs)  # a fresh architecture sample from the search space
    arch_err = {k: v * rng.normal(size=n_archs) for k, v in ARCH_NOISE.items()}
    est = {k: [] for k in ARCH_NOISE}
    for _ in range(n_seeds):
        level = SEED_NOISE[rng.integers(len(SEED_NOISE))]
        for k in ARCH_NOISE:
            est[k].append(truth + arch_err[k] + level * rng.normal(size=n_archs))
    return truth, np.array(est["a"]), np.array(est["b"])


@pytest.mark.parametrize("n_seeds", [5, 10])
def test_search_space_interval_covers_the_population_difference(n_seeds):
    """Every seed scores one architecture sample; the search-space interval (seed variance of the mean plus the
    jackknife architecture variance, Welch-Satterthwaite df) covers the population difference >= 93% of the
    time, while the seed-only interval -- about these architectures -- does not cover it that often."""
    rng = np.random.default_rng(40 + n_seeds)
    target = _population_tau(ARCH_NOISE["a"]) - _population_tau(ARCH_NOISE["b"])
    reps, n_archs = 300, 40  # measured coverage ~0.97-0.98 (the jackknife is slightly conservative)
    two_source, seed_only = 0, 0
    for rep in range(reps):
        truth, a, b = _dataset(rng, n_seeds, n_archs)
        d = _taus(a, truth) - _taus(b, truth)
        if rep == 0:
            assert d == pytest.approx([stats.kendall(a[s], truth) - stats.kendall(b[s], truth) for s in range(n_seeds)])
        space = stats.two_source_t_test(d, stats.arch_variance_of_mean_difference(a, b, truth), n_archs - 1)
        seeds = stats.paired_t_test(d)
        two_source += space.low <= target <= space.high
        seed_only += seeds.low <= target <= seeds.high
    assert two_source / reps >= 0.93
    assert seed_only / reps < two_source / reps - 0.05


def test_compare_reports_the_search_space_interval_from_run_predictions(tmp_path):
    """The same construction through compare's own reader (predictions.csv of each run)."""
    from harness.runs.sweep import Cell, CellResult
    import json

    rng = np.random.default_rng(50)
    truth, a, b = _dataset(rng, 4, 40)
    results = []
    for label, est in (("a", a), ("b", b)):
        for seed in range(4):
            d = tmp_path / f"{label}-{seed}"
            d.mkdir()
            pd.DataFrame({"index": np.arange(40), "estimate": est[seed], "ground_truth": truth}).to_csv(d / "predictions.csv", index=False)
            (d / "metrics.json").write_text(json.dumps({"metrics": {"kendall_tau": stats.kendall(est[seed], truth)}}))
            results.append(CellResult(Cell(label, seed=seed, label=label), d, "complete", None, 0.0))
    row = cmp.paired(cmp.read_results(results), [cmp.Variant("b", "b"), cmp.Variant("a", "a")], "b").iloc[0]
    diffs = np.array([stats.kendall(a[s], truth) - stats.kendall(b[s], truth) for s in range(4)])
    expected = stats.two_source_t_test(diffs, stats.arch_variance_of_mean_difference(a, b, truth), 39)
    assert (row["space_lo"], row["space_hi"], row["p_space"]) == pytest.approx((expected.low, expected.high, expected.p))


# ---- power -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 5, 8])
def test_printed_power_matches_simulated_power(n):
    """At the printed minimal detectable difference the paired t-test rejects 80% of the time, and the
    printed power for 0.05 tau is the simulated one."""
    rng = np.random.default_rng(60 + n)
    sd, reps = 0.044, 40000
    mdd = stats.minimal_detectable_difference(sd, n)
    power = np.mean(_paired_t(rng.normal(mdd, sd, (reps, n)))[0] < 0.05)
    assert abs(power - 0.8) < 3.5 * _mc_se(0.8, reps)
    printed = stats.paired_t_power(0.05, sd, n)
    simulated = np.mean(_paired_t(rng.normal(0.05, sd, (reps, n)))[0] < 0.05)
    assert abs(simulated - printed) < 3.5 * _mc_se(printed, reps)


@pytest.mark.parametrize("pooled", [False, True])
def test_gate_catches_the_stated_drop_with_the_stated_power(pooled):
    """A true drop of drops_caught_with_power (computed at the true sd) fails the gate 80% of the time: baseline
    and fresh seeds drawn as the gate sees them, the sd estimated from the baseline alone (own or pooled)."""
    rng = np.random.default_rng(80 + pooled)
    reps, k, a = 40000, 4, regression.FALSE_ALARM
    m = 2 if pooled else 1
    df = m * (k - 1)
    truth = _baseline({"ws": np.full(k, 0.25) + np.array([0.01, -0.01, 0.02, -0.02])} if not pooled else
                      {"ws": np.array([0.26, 0.24, 0.27, 0.23]), "dinas": np.array([0.30, 0.28, 0.31, 0.27])})
    scale, sd_df, _how = regression.seed_scale(truth, "ws")
    assert sd_df == df
    drop = regression.drops_caught_with_power(truth, k)["ws"]
    assert drop == pytest.approx(stats.drop_caught_with_power(scale, df, k, k, a))
    base = rng.normal(0.25, scale, (reps, m, k))
    now = rng.normal(0.25 - drop, scale, (reps, k))
    s_hat = np.sqrt(base.var(axis=2, ddof=1).mean(axis=1))
    fails = base[:, 0].mean(axis=1) - now.mean(axis=1) > stats.one_sided_t(a, df) * s_hat * math.sqrt(2 / k)
    assert abs(fails.mean() - 0.8) < 3.5 * _mc_se(0.8, reps)
    half = stats.gate_power(drop / 2, scale, df, k, k, a)
    fails_half = base[:, 0].mean(axis=1) - rng.normal(0.25 - drop / 2, scale, (reps, k)).mean(axis=1) > \
        stats.one_sided_t(a, df) * s_hat * math.sqrt(2 / k)
    assert abs(fails_half.mean() - half) < 3.5 * _mc_se(half, reps)
    assert stats.gate_power(1e-12, scale, df, k, k, a) == pytest.approx(a, abs=1e-6)


def test_seeds_needed_reach_the_power_in_simulation():
    rng = np.random.default_rng(70)
    sd, reps = 0.044, 40000
    n = stats.seeds_needed(0.05, sd)
    power = np.mean(_paired_t(rng.normal(0.05, sd, (reps, n)))[0] < 0.05)
    before = np.mean(_paired_t(rng.normal(0.05, sd, (reps, n - 1)))[0] < 0.05)
    assert power > 0.8 - 3.5 * _mc_se(0.8, reps) and before < 0.8 + 3.5 * _mc_se(0.8, reps)
