"""The disturbance probe (`[features.disturbance]`, or `bench --measure-disturbance`), for any strategy.

Performance disturbance (PD, Niu et al. 2020): training later architectures on shared weights changes how
an earlier one performs. The probe measures it through the Strategy interface only:

* a fixed probe set: `num_probes` architectures drawn with `probe_seed`, distinct up to isomorphism and
  disjoint from the scored set, so their ground truth may be used to tune without touching the scored one;
* `events` probe trainings spread over training: at an event step the strategy is made to train the
  event's probe architecture (forced architecture); right after that step the probe is estimated
  (acc_0), and again after t further updates for each t in `lags` (acc_t). PD(t) = acc_0 - acc_t, so a
  positive PD is accuracy lost to later updates;
* `snapshots` evenly spaced estimates of every probe: the probe ranking's Kendall tau with the previous
  snapshot (rank disturbance) and with ground truth (ranking quality over training).

Estimates are the strategy's own `estimate` (fixed held-out batches, fixed BN mode, accuracy column
`holdout_acc` where the strategy reports it). Results in the run directory: disturbance_events.csv (one row
per event and lag), disturbance_pd.csv (per lag t: pd_mean, pd_median, quantiles), disturbance_snapshots.csv,
rank_disturbance.csv (step, tau_previous, tau_truth), disturbance.json (all of it summarised) and
disturbance.png/.pdf.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from harness.scoring.archsets import disjoint_archs, scored_archs
from harness.config import EvalConfig, build_feature_options
from harness.errors import HarnessError
from harness.runs.fileio import atomic_write, write_json
from harness.scoring.groundtruth import GroundTruth, load_ground_truth
from harness.scoring.metrics import kendall_tau
from harness.registry import FEATURES
from harness.strategies.base import Strategy, StrategyContext

HEADLINE_LAGS = (1, 10, 100)


@dataclass(frozen=True)
class DisturbanceOptions:
    enabled: bool = False
    num_probes: int = 100
    probe_seed: int = 20260  # separate from eval.arch_seed: probes are never the scored architectures
    events: int = 24
    lags: list = field(default_factory=lambda: [1, 3, 10, 30, 100])
    first_fraction: float = 0.05  # events start after this fraction of training (the very start is noise)
    snapshots: int = 4  # each estimates every probe: the dominant cost with 100 probes

    def validate(self) -> None:
        p = "features.disturbance"
        for name in ("num_probes", "events", "snapshots"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise HarnessError(f"{p}.{name}={getattr(self, name)!r} must be a positive integer")
        if self.num_probes < 2:
            raise HarnessError(f"{p}.num_probes={self.num_probes!r} must be at least 2 (a ranking needs two)")
        if not isinstance(self.lags, list) or not self.lags or any(not isinstance(t, int) or t < 1 for t in self.lags):
            raise HarnessError(f"{p}.lags={self.lags!r} must be a non-empty list of positive integers (update counts)")
        if not 0 <= self.first_fraction < 1:
            raise HarnessError(f"{p}.first_fraction={self.first_fraction!r} must be in [0, 1)")


# ---- pure metrics (unit-tested on hand-made sequences) ---------------------------------------------------
def pd_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (event, lag > 0): acc right after the probe's own update minus acc `lag` updates later.

    `events` has columns event, probe, arch, trained_step, lag, acc, with lag 0 = right after training.
    """
    base = events[events["lag"] == 0][["event", "acc"]].rename(columns={"acc": "acc_trained"})
    later = events[events["lag"] > 0].rename(columns={"acc": "acc_later"})
    table = later.merge(base, on="event", how="inner")
    table["pd"] = table["acc_trained"] - table["acc_later"]
    return table.sort_values(["event", "lag"]).reset_index(drop=True)


def summarize_pd(table: pd.DataFrame) -> dict[int, dict[str, float]]:
    """Per lag: n, mean, median, std, quartiles, 10/90% quantiles and mean |PD| over events."""
    out: dict[int, dict[str, float]] = {}
    for lag, group in table.groupby("lag"):
        values = group["pd"].to_numpy(dtype=np.float64)
        out[int(lag)] = {
            "n": int(len(values)),
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "q10": float(np.quantile(values, 0.10)),
            "q25": float(np.quantile(values, 0.25)),
            "q75": float(np.quantile(values, 0.75)),
            "q90": float(np.quantile(values, 0.90)),
            "mean_abs": float(np.abs(values).mean()),
        }
    return out


def rank_disturbance(snapshots: pd.DataFrame, truth: dict[str, float]) -> pd.DataFrame:
    """Per snapshot step: Kendall tau of the probe ranking with the previous snapshot and with ground truth."""
    rows = []
    previous = None
    for step, group in snapshots.sort_values(["step", "arch"]).groupby("step", sort=True):
        scores = group["acc"].to_numpy(dtype=np.float64)
        gt = np.array([truth[a] for a in group["arch"]])
        rows.append({
            "step": int(step),
            "tau_previous": kendall_tau(scores, previous) if previous is not None else math.nan,
            "tau_truth": kendall_tau(scores, gt),
        })
        previous = scores
    return pd.DataFrame(rows, columns=["step", "tau_previous", "tau_truth"])


# ---- the schedule ----------------------------------------------------------------------------------------
def event_steps(total: int, events: int, first_fraction: float, max_lag: int) -> list[int]:
    """Distinct steps >= 1, evenly spread, leaving room for the largest lag where the budget allows it."""
    first = max(1, int(first_fraction * total))
    last = total - 1 - max_lag
    if last < first:
        last = total - 1  # short runs: late events just miss their longest lags
    if last < first:
        return []
    return sorted({int(round(s)) for s in np.linspace(first, last, num=min(events, last - first + 1))})


def snapshot_steps(total: int, snapshots: int) -> list[int]:
    return sorted({max(1, int(round(total * (i + 1) / snapshots))) for i in range(snapshots)})


def probe_archs(space, gt: GroundTruth, count: int, seed: int, excluded: Sequence[Any]) -> list:
    """`count` architectures, distinct up to isomorphism, none of them isomorphic to an excluded one."""
    return disjoint_archs(space, gt, count, seed, excluded, what="features.disturbance.num_probes")


# ---- the hook --------------------------------------------------------------------------------------------
class DisturbanceProbe:
    def __init__(self, options: DisturbanceOptions, ctx: StrategyContext, gt: GroundTruth, eval_config: EvalConfig):
        self.options = options
        self.column = eval_config.ground_truth
        excluded = scored_archs(ctx.space, gt, eval_config.num_archs, eval_config.arch_seed, eval_config.split_seed)
        self.probes = probe_archs(ctx.space, gt, options.num_probes, options.probe_seed, excluded)
        self.truth = dict(zip((str(a) for a in self.probes), gt.values(self.probes, self.column).tolist()))
        total = ctx.total_steps
        self.lags = sorted(set(options.lags))
        self.events = event_steps(total, options.events, options.first_fraction, max(self.lags))
        self.event_probe = {step: i % len(self.probes) for i, step in enumerate(self.events)}
        self.event_index = {step: i for i, step in enumerate(self.events)}
        self.snapshots = set(snapshot_steps(total, options.snapshots))
        self.event_rows: list[dict] = []
        self.snapshot_rows: list[dict] = []
        self.accuracy_column: str | None = None
        self._checked = False

    def forced_arch(self, step: int):
        probe = self.event_probe.get(step)
        return None if probe is None else self.probes[probe]

    def _due(self, done: int) -> list[tuple[int, int]]:
        """(event step, lag) pairs to estimate after `done` steps; lag 0 = the event's own step just finished."""
        due = []
        for lag in [0, *self.lags]:
            trained = done - 1 - lag
            if trained in self.event_index:
                due.append((trained, lag))
        return due

    def after_step(self, step: int, strategy: Strategy) -> None:
        if not self._checked:
            if not strategy.supports_forced_arch:
                raise HarnessError(
                    f"features.disturbance needs a strategy that can train a given architecture; {strategy.name!r} cannot -- disable the feature for it"
                )
            self._checked = True
        due = self._due(step)
        snapshot = step in self.snapshots
        if not due and not snapshot:
            return
        wanted = sorted({self.event_probe[trained] for trained, _ in due} | (set(range(len(self.probes))) if snapshot else set()))
        acc = dict(zip(wanted, self._accuracy(strategy, [self.probes[i] for i in wanted])))
        for trained, lag in due:
            probe = self.event_probe[trained]
            self.event_rows.append({
                "event": self.event_index[trained], "probe": probe, "arch": str(self.probes[probe]),
                "trained_step": trained, "lag": lag, "step": step, "acc": acc[probe],
            })
        if snapshot:
            for i, arch in enumerate(self.probes):
                self.snapshot_rows.append({"step": step, "probe": i, "arch": str(arch), "acc": acc[i], "truth": self.truth[str(arch)]})

    def _accuracy(self, strategy: Strategy, archs: list) -> list[float]:
        estimates = strategy.estimate(archs)
        self.accuracy_column = "holdout_acc" if "holdout_acc" in estimates else "score"
        return np.asarray(estimates[self.accuracy_column], dtype=np.float64).tolist()

    def state_dict(self) -> dict:
        return {"event_rows": list(self.event_rows), "snapshot_rows": list(self.snapshot_rows), "accuracy_column": self.accuracy_column}

    def load_state_dict(self, state: dict) -> None:
        self.event_rows = list(state.get("event_rows", []))
        self.snapshot_rows = list(state.get("snapshot_rows", []))
        self.accuracy_column = state.get("accuracy_column")

    # ---- results ---------------------------------------------------------------------------------------
    def results(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
        events = pd.DataFrame(self.event_rows, columns=["event", "probe", "arch", "trained_step", "lag", "step", "acc"])
        table = pd_table(events)
        snapshots = pd.DataFrame(self.snapshot_rows, columns=["step", "probe", "arch", "acc", "truth"])
        ranks = rank_disturbance(snapshots, self.truth) if len(snapshots) else pd.DataFrame(columns=["step", "tau_previous", "tau_truth"])
        per_lag = summarize_pd(table)
        summary = {
            "options": asdict(self.options),
            "accuracy_column": self.accuracy_column,
            "ground_truth_column": self.column,
            "probes": [str(a) for a in self.probes],
            "event_steps": self.events,
            "pd_by_lag": {str(k): v for k, v in per_lag.items()},
            "mean_pd_at": {str(t): per_lag[t]["mean"] if t in per_lag else None for t in HEADLINE_LAGS},
            "rank": {
                "steps": ranks["step"].tolist(),
                "tau_previous": ranks["tau_previous"].tolist(),
                "tau_truth": ranks["tau_truth"].tolist(),
                "mean_tau_previous": float(np.nanmean(ranks["tau_previous"])) if ranks["tau_previous"].notna().any() else None,
                "final_tau_truth": float(ranks["tau_truth"].iloc[-1]) if len(ranks) else None,
            },
        }
        return table, snapshots, ranks, summary

    def finish(self, run_dir: Path) -> None:
        from harness.plots.disturbance import plot_run

        table, snapshots, ranks, summary = self.results()
        atomic_write(run_dir / "disturbance_events.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))
        atomic_write(run_dir / "disturbance_snapshots.csv", lambda tmp: snapshots.to_csv(tmp, index=False, float_format="%.6g"))
        per_lag = pd.DataFrame([{"t": int(t), **{f"pd_{k}": v for k, v in stats.items()}} for t, stats in summary["pd_by_lag"].items()])
        atomic_write(run_dir / "disturbance_pd.csv", lambda tmp: per_lag.to_csv(tmp, index=False, float_format="%.6g"))
        atomic_write(run_dir / "rank_disturbance.csv", lambda tmp: ranks.to_csv(tmp, index=False, float_format="%.6g"))
        write_json(run_dir / "disturbance.json", summary)
        plot_run(run_dir)


@FEATURES.register("disturbance")
def make(options: dict, ctx: StrategyContext, ground_truth: GroundTruth | None = None, eval_config: EvalConfig | None = None) -> DisturbanceProbe:
    opts = build_feature_options(DisturbanceOptions, options, "disturbance")
    gt = ground_truth if ground_truth is not None else load_ground_truth()
    return DisturbanceProbe(opts, ctx, gt, eval_config or EvalConfig())
