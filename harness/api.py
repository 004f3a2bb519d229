"""The Python API: the same runs as the CLI verbs (which call these functions), returning typed results.

    import harness
    r = harness.bench(strategy="params", preset="smoke")
    r.metrics["kendall_tau"], r.run_dir, r.predictions()

    c = harness.compare(strategies=["ws", "params"], seeds="0-2", preset="smoke")
    c.verdict  # one row per variant paired against the reference, with the verdict sentence

    results = harness.sweep(strategies=["ws", "params"], seeds=[0, 1], presets=["smoke"])
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.errors import HarnessError

RUNS_DIR = Path("results/runs")
TABLES_DIR = Path("results/tables")


@dataclass
class BenchResult:
    """One complete run. `metrics`: the ranking metrics (kendall_tau, spearman_rho, regret, ...);
    `record`: all of metrics.json (timings, predicted best, strategy summary, ...)."""

    metrics: dict[str, Any]
    run_dir: Path
    record: dict[str, Any]

    def predictions(self):
        """Per scored architecture: its estimate and ground truth (predictions.csv) as a DataFrame."""
        import pandas as pd

        return pd.read_csv(self.run_dir / "predictions.csv")

    def summary(self) -> str:
        """The one-screen summary `python -m harness bench` prints."""
        from harness.runs.summary import one_screen

        return one_screen(self.record)


@dataclass
class CompareResult:
    """`verdict`: one row per variant paired against the reference (mean difference, intervals, sign-flip p,
    detectable difference) plus its `verdict` sentence; `variants`: mean and interval per variant; `runs`: one
    row per (variant, seed) run; `text`: the Markdown report; `paths`: the files written."""

    verdict: Any
    variants: Any
    runs: Any
    text: str
    paths: dict[str, Path]

    @property
    def complete(self) -> bool:
        return bool((self.runs["state"] == "complete").all())


@dataclass
class SweepResult:
    """One cell of a sweep: its run directory, state (complete | failed | interrupted | invalid | refused),
    one-line error and Kendall tau."""

    strategy: str
    space: str
    preset: str
    seed: int
    label: str
    overrides: tuple[str, ...]
    run_dir: Path
    state: str
    error: str | None
    kendall_tau: float | None
    raw: Any = field(repr=False, default=None)  # the sweep's own CellResult

    def result(self) -> BenchResult:
        """The complete run as a BenchResult."""
        if self.state != "complete":
            raise HarnessError(f"run {self.run_dir} is {self.state}, not complete: {self.error or 'no metrics'}")
        return _result(self.run_dir)


def _setting(key: str, value: Any) -> str:
    """{'train.epochs': 2} entry -> 'train.epochs=2' (the --set text: TOML values, bare words for names)."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", value) and value not in ("true", "false", "inf", "nan"):
        return f"{key}={value}"
    try:
        return f"{key}={json.dumps(value)}"
    except TypeError:
        raise HarnessError(f"override {key}={value!r}: the value is not a number, string, boolean or list") from None


def settings(overrides: Mapping[str, Any] | Iterable[str] | None) -> tuple[str, ...]:
    """Overrides as a dict ({'train.epochs': 2}) or as --set texts ('train.epochs=2') -> --set texts."""
    if overrides is None:
        return ()
    if isinstance(overrides, str):
        raise HarnessError(f"overrides {overrides!r}: give a dict {{'section.key': value}} or a list of 'section.key=value'")
    if isinstance(overrides, Mapping):
        return tuple(_setting(str(k), v) for k, v in overrides.items())
    return tuple(overrides)


def _plugin_names(plugins) -> tuple[str, ...]:
    if isinstance(plugins, str):
        plugins = [plugins]
    from harness.plugins import load_plugins

    return load_plugins(plugins or ())


def _result(run_dir: Path) -> BenchResult:
    from harness.runs.fileio import read_json

    record = read_json(Path(run_dir) / "metrics.json")
    return BenchResult(metrics=record["metrics"], run_dir=Path(run_dir), record=record)


def bench(strategy: str, preset: str = "mini", space: str = "nb201", seed: int = 0,
          overrides: Mapping[str, Any] | Iterable[str] | None = None, plugins: Sequence[str] | str = (),
          runs_dir: str | Path = RUNS_DIR, name: str | None = None, resume: bool | None = None, device: str = "auto",
          data_dir: str | None = None, progress: bool = False) -> BenchResult:
    """Trains and scores one strategy on one space; returns the complete run.

    resume: None (the default here) reuses a complete run with the same identity and continues an interrupted
    one; False refuses an existing run directory (the CLI's default); True requires one to continue."""
    from harness.runs.run import BenchRequest, bench as run_bench, check_run_dir, run_name

    req = BenchRequest(strategy=strategy, space=space, preset=preset, seed=seed, overrides=settings(overrides),
                       runs_dir=Path(runs_dir), name=name, resume=bool(resume), device=device, data_dir=data_dir,
                       progress=progress, plugins=_plugin_names(plugins))
    if resume is None:
        req.resume = (check_run_dir(req.runs_dir, run_name(req)) / "config.json").exists()
    run_bench(req)
    # As written to metrics.json (undefined values are null there), so a fresh and a reused run read the same.
    return _result(Path(req.runs_dir) / run_name(req))


def _as_list(value, what: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _seeds(value) -> list[int]:
    from harness.reports.compare import parse_seeds

    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        return parse_seeds(value)
    seeds = list(value)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise HarnessError(f"seed {s!r} is not a seed; accepted: integers >= 0")
    return seeds


def sweep(strategies: Sequence[str] | str, seeds: Sequence[int] | str | int = (0,), presets: Sequence[str] | str = ("mini",),
          spaces: Sequence[str] | str = ("nb201",), overrides: Mapping[str, Any] | Iterable[str] | None = None,
          override_sets: Mapping[str, Mapping[str, Any] | Iterable[str]] | None = None, plugins: Sequence[str] | str = (),
          runs_dir: str | Path = RUNS_DIR, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
          data_dir: str | None = None, progress: bool = False) -> list[SweepResult]:
    """Runs the grid strategies x seeds x presets x spaces x override sets on Ray (local unless `address` or
    RAY_ADDRESS names a cluster); complete runs are skipped, interrupted ones resumed. One result per cell."""
    from harness.commands.sweep import build_cells
    from harness.runs.sweep import run_cells

    plugin_names = _plugin_names(plugins)
    sets = [(str(label), settings(body)) for label, body in (override_sets or {}).items()]
    for label, body in sets:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", label) or not body:
            raise HarnessError(f"override set {label!r}: accepted: a name of letters, digits, _ . - with at least one override")
    cells = build_cells(_as_list(strategies, "strategies"), _seeds(seeds), _as_list(presets, "presets"),
                        _as_list(spaces, "spaces"), settings(overrides), sets)
    results = run_cells(cells, Path(runs_dir), address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                        progress=progress, data_dir=data_dir, plugins=plugin_names)
    return [SweepResult(r.cell.strategy, r.cell.space, r.cell.preset, r.cell.seed, r.cell.label, r.cell.overrides,
                        r.run_dir, r.state, r.error, r.kendall_tau, r) for r in results]


def compare(strategies: Sequence[str] | str = (), variants: Sequence[str] | Mapping[str, str] = (), seeds: Sequence[int] | str = "0-4",
            preset: str = "mini", space: str = "nb201", reference: str | None = None,
            overrides: Mapping[str, Any] | Iterable[str] | None = None, plugins: Sequence[str] | str = (),
            runs_dir: str | Path = RUNS_DIR, out: str | Path | None = None, data_dir: str | None = None,
            address: str | None = None, arch_bootstrap: int = 1000, truth: str = "benchmark",
            estimator: str | None = None) -> CompareResult:
    """Runs what is missing and compares the variants on the same seeds (the `compare` verb). `variants`:
    'LABEL=STRATEGY[:SECTION.KEY=VALUE...]' texts, or {LABEL: 'STRATEGY[:SECTION.KEY=VALUE...]'}."""
    import pandas as pd

    from harness.config import build_options, resolve
    from harness.registry import STRATEGIES
    from harness.reports.compare import cell_labels, make_cells, read_results, variants_from, write_report
    from harness.runs.sweep import run_cells

    plugin_names = _plugin_names(plugins)
    if isinstance(variants, Mapping):
        variants = [f"{label}={body}" for label, body in variants.items()]
    chosen = variants_from(_as_list(strategies, "strategies"), list(variants))
    seed_list = _seeds(seeds)
    shared = list(settings(overrides))
    reference = reference or chosen[0].label
    if reference not in {v.label for v in chosen}:
        raise HarnessError(f"--reference {reference!r} is not among the variants {[v.label for v in chosen]}")
    if arch_bootstrap < 1:
        raise HarnessError(f"--arch-bootstrap={arch_bootstrap} must be >= 1")
    if truth not in ("benchmark", "proxy"):
        raise HarnessError(f"truth {truth!r} is not one of: benchmark, proxy")
    for v in chosen:  # every name and override is checked before any run starts
        cfg = resolve(preset, tuple(shared) + v.overrides, space=space)
        build_options(STRATEGIES.get(v.strategy).Options, cfg.strategy.get(v.strategy, {}), v.strategy)
    if estimator is not None:
        from harness.config import WEIGHTS, estimator_name
        from harness.training.evaluation import ESTIMATE_BY
        names = [estimator_name(w, b, f) for w in WEIGHTS for b in ESTIMATE_BY for f in (False, True)]
        if estimator not in names:
            raise HarnessError(f"--estimator {estimator!r} is not one of: {', '.join(names)}")
        if "eval.all_estimators=true" not in shared:
            shared.append("eval.all_estimators=true")
    labels = "_".join(v.label for v in chosen)
    seeds_text = seeds if isinstance(seeds, str) else ",".join(map(str, seed_list))
    out = Path(out) if out is not None else TABLES_DIR / re.sub(r"[^A-Za-z0-9_.+-]", "-", f"compare-{labels}-{preset}-s{seeds_text}")
    cells = make_cells(chosen, seed_list, preset, space, shared)
    results = run_cells(cells, Path(runs_dir), address=address, data_dir=data_dir, plugins=plugin_names)
    rows = read_results(results, cell_labels(chosen, seed_list), estimator, truth)
    title = f"{', '.join(v.label for v in chosen)} on {preset}, seeds {','.join(map(str, seed_list))}"
    if estimator:
        title += f", estimator {estimator}"
    title += f", against the {truth} truth"
    if shared:
        title += f" (all with {' '.join(shared)})"
    text, paths = write_report(rows, chosen, reference, out, title, arch_bootstrap)
    verdict = pd.read_csv(paths["paired_csv"]) if Path(paths["paired_csv"]).stat().st_size > 1 else pd.DataFrame()
    lines = _verdict_lines(text)
    if len(verdict) == len(lines):
        verdict["verdict"] = lines
    return CompareResult(verdict=verdict, variants=pd.read_csv(paths["strategies_csv"]), runs=rows, text=text, paths=paths)


def _verdict_lines(text: str) -> list[str]:
    """The bullets of the report's '### Verdict' section, in the order of its paired rows."""
    section = text.split("### Verdict", 1)[-1].split("\n###", 1)[0] if "### Verdict" in text else ""
    return [line[2:] for line in section.splitlines() if line.startswith("- ")]
