"""Paper tables and figures declared in benchmarks/papers/NAME.toml: which runs make them, what was published.

A spec lists runs (strategy, preset, seeds, overrides) and reference values with their source. `plan`
says which run directories a spec needs (named exactly as `bench` names them, so runs made by hand are
reused); `render` puts our mean +- std beside the published value. A strategy that is not registered or
has no finished run shows "not run"; a reference whose value could not be checked shows "unverified".
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import resolve, same_config
from harness.errors import HarnessError, one_of
from harness.runs.fileio import write_text
from harness.registry import STRATEGIES
from harness.reports.collect import read_run
from harness.reports.tables import BASELINE, fmt_mean_std, is_training_free, to_latex, to_markdown
from harness.runs.run import BenchRequest, run_name

PAPERS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "papers"
# Extra JSON files of a run directory that metric paths may reach into, under this key.
EXTRA_FILES = {"disturbance": "disturbance.json"}


@dataclass(frozen=True)
class Metric:
    path: str  # dotted path into metrics.json (plus `disturbance.` for disturbance.json)
    header: str
    digits: int = 3


@dataclass(frozen=True)
class RunSpec:
    strategy: str
    label: str
    preset: str
    seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()
    space: str = "nb201"


@dataclass(frozen=True)
class Reference:
    row: str  # the RunSpec label or strategy it belongs to
    metric: str
    source: str
    value: float | None = None
    std: float | None = None
    setting: str = ""
    verified: bool = False


@dataclass
class PaperSpec:
    name: str
    title: str
    description: str
    runs: list[RunSpec]
    metrics: list[Metric]
    references: list[Reference] = field(default_factory=list)
    figures: tuple[str, ...] = ()


def spec_names(folder: Path = PAPERS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(folder).glob("*.toml"))


def _require(table: dict, key: str, where: str) -> Any:
    if key not in table:
        raise HarnessError(f"{where}: missing key {key!r}")
    return table[key]


def load_spec(name_or_path: str | Path, folder: Path = PAPERS_DIR) -> PaperSpec:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if str(name_or_path) not in spec_names(folder):
            raise one_of("paper table", str(name_or_path), spec_names(folder))
        path = Path(folder) / f"{name_or_path}.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"cannot read paper spec {path}: {exc}") from None
    where = str(path)
    preset = raw.get("preset", "mini")
    seeds = tuple(int(s) for s in raw.get("seeds", [0]))
    runs = []
    for i, entry in enumerate(_require(raw, "runs", where)):
        strategy = _require(entry, "strategy", f"{where} runs[{i}]")
        runs.append(RunSpec(
            strategy=strategy,
            label=entry.get("label", strategy),
            preset=entry.get("preset", preset),
            seeds=tuple(int(s) for s in entry.get("seeds", seeds)),
            overrides=tuple(entry.get("overrides", raw.get("overrides", []))),
            space=entry.get("space", raw.get("space", "nb201")),
        ))
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise HarnessError(f"{where}: run labels must be unique; got {labels}")
    row_names = set(labels) | {r.strategy for r in runs}
    metrics = [Metric(_require(m, "path", f"{where} metrics"), m.get("header", m["path"]), int(m.get("digits", 3)))
               for m in _require(raw, "metrics", where)]
    known = {m.path for m in metrics}
    references = []
    for i, ref in enumerate(raw.get("references", [])):
        metric = _require(ref, "metric", f"{where} references[{i}]")
        row = _require(ref, "row", f"{where} references[{i}]")
        if metric not in known:
            raise one_of(f"metric of {where} references[{i}]", metric, known)
        if row not in row_names:
            raise one_of(f"row of {where} references[{i}]", row, row_names)
        value = ref.get("value")
        references.append(Reference(
            row=row, metric=metric, source=_require(ref, "source", f"{where} references[{i}]"),
            value=None if value is None else float(value), std=ref.get("std"), setting=ref.get("setting", ""),
            verified=bool(ref.get("verified", False)) and value is not None,
        ))
    return PaperSpec(
        name=path.stem, title=raw.get("title", path.stem), description=raw.get("description", "").strip(),
        runs=runs, metrics=metrics, references=references, figures=tuple(raw.get("figures", [])),
    )


def request(run: RunSpec, seed: int, runs_dir: Path, progress: bool = False) -> BenchRequest:
    return BenchRequest(strategy=run.strategy, space=run.space, preset=run.preset, seed=seed,
                        overrides=run.overrides, runs_dir=Path(runs_dir), progress=progress)


def is_registered(strategy: str) -> bool:
    return strategy in STRATEGIES.names()


def expected_config(run: RunSpec) -> dict:
    """The `config` a run of this spec entry would record now (as harness.runs.run writes it)."""
    cfg = resolve(run.preset, run.overrides)
    record = cfg.to_dict()
    record["strategy"] = {run.strategy: cfg.strategy.get(run.strategy, {})}
    return json.loads(json.dumps(record))


def _recorded_config(path: Path) -> dict | None:
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return None


def plan(spec: PaperSpec, runs_dir: Path) -> list[tuple[RunSpec, int, Path, str]]:
    """(run, seed, run directory, state) for every run the spec needs; state is complete / partial /
    missing / unregistered, or stale: a directory of that name made with another config (e.g. before the
    preset was re-tuned), whose numbers would not be this table's."""
    rows = []
    for run in spec.runs:
        expected = expected_config(run)
        for seed in run.seeds:
            path = Path(runs_dir) / run_name(request(run, seed, runs_dir))
            if not is_registered(run.strategy):
                state = "unregistered"
            elif (path / "config.json").is_file() and not same_config(_recorded_config(path) or {}, expected):
                state = "stale"
            elif (path / "metrics.json").is_file():
                state = "complete"
            elif (path / "config.json").is_file():
                state = "partial"
            else:
                state = "missing"
            rows.append((run, seed, path, state))
    return rows


def lookup(record: dict, dotted: str) -> float:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return math.nan
        node = node[part]
    if isinstance(node, bool) or node is None:
        return math.nan
    try:
        return float(node)
    except (TypeError, ValueError):
        return math.nan


def run_record(path: Path) -> dict:
    """metrics.json plus the extra JSON files metric paths may name; {} if the run is not complete."""
    try:
        record = json.loads((Path(path) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    for key, name in EXTRA_FILES.items():
        try:
            record[key] = json.loads((Path(path) / name).read_text())
        except (OSError, ValueError):
            pass
    return record


def _ref_cell(ref: Reference | None, note: int | None) -> str:
    if ref is None:
        return ""
    mark = f" [{note}]" if note else ""
    if ref.value is None:
        return f"unverified{mark}"
    value = f"{ref.value:g}" if ref.std is None else f"{ref.value:g} ± {ref.std:g}"
    return value + ("" if ref.verified else " (unverified)") + mark


def params_baseline_tau(runs_dir: Path, space: str, preset: str) -> float:
    """tau of the `params` run (seed 0, no overrides) of this preset under runs_dir, NaN if there is none."""
    path = Path(runs_dir) / run_name(BenchRequest(strategy=BASELINE, space=space, preset=preset, seed=0))
    return lookup(run_record(path), "metrics.kendall_tau")


def _remark(run: RunSpec, records: list[dict], runs_dir: Path) -> str:
    if not records or is_training_free(run.strategy):
        return ""
    base = params_baseline_tau(runs_dir, run.space, run.preset)
    taus = pd.Series([lookup(r, "metrics.kendall_tau") for r in records], dtype=float).dropna()
    if math.isnan(base) or taus.empty or taus.mean() >= base:
        return ""
    return f"tau below the {BASELINE} baseline ({base:.3f})"


def render(spec: PaperSpec, runs_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The table (one row per run spec) and its footnotes."""
    planned = plan(spec, runs_dir)
    notes: list[str] = []
    note_of: dict[tuple[str, str, str], int] = {}
    for ref in spec.references:
        key = (ref.source, ref.setting, "v" if ref.verified else "u")
        if key not in note_of:
            note_of[key] = len(notes) + 1
            if ref.verified:
                status = ""
            elif ref.value is None:
                status = " -- the published value could not be checked here, so none is shown"
            else:
                status = " -- value not checked against the source"
            notes.append(f"[{note_of[key]}] {ref.source}" + (f"; setting: {ref.setting}" if ref.setting else "") + status)
    rows = []
    for run in spec.runs:
        mine = [(seed, path, state) for r, seed, path, state in planned if r is run]
        done = [path for _seed, path, state in mine if state == "complete"]
        records = [run_record(p) for p in done]
        row: dict[str, str] = {"method": run.label, "strategy": run.strategy}
        if not is_registered(run.strategy):
            status = "not run (strategy not registered)"
        elif not done:
            states = {state for _s, _p, state in mine}
            failed = [p for _s, p, st in mine if st == "partial" and read_run(p)["state"] == "failed"]
            status = "not run" + (" (failed)" if failed else " (partial)" if "partial" in states
                                  else " (stale config)" if "stale" in states else "")
        else:
            status = ""
        row["n"] = f"{len(done)}/{len(run.seeds)}"
        row["preset"] = run.preset + (f" ({' '.join(run.overrides)})" if run.overrides else "")
        for metric in spec.metrics:
            values = pd.Series([lookup(r, metric.path) for r in records], dtype=float).dropna()
            if status:
                ours = status
            elif values.empty:
                ours = "-"
            else:
                ours = fmt_mean_std(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan, metric.digits)
            row[f"{metric.header} (ours)"] = ours
            ref = next((r for r in spec.references if r.metric == metric.path and r.row in (run.label, run.strategy)), None)
            note = note_of.get((ref.source, ref.setting, "v" if ref.verified else "u")) if ref else None
            row[f"{metric.header} (published)"] = _ref_cell(ref, note)
        row["remark"] = _remark(run, records, runs_dir)
        rows.append(row)
    table = pd.DataFrame(rows)
    empty = [c for c in table.columns if (c.endswith("(published)") or c == "remark") and not table[c].astype(bool).any()]
    return table.drop(columns=empty), notes


def write_paper(spec: PaperSpec, runs_dir: Path, out: Path) -> dict[str, Path]:
    table, notes = render(spec, runs_dir)
    out = Path(out)
    paths = {"markdown": out / f"paper_{spec.name}.md", "csv": out / f"paper_{spec.name}.csv", "latex": out / f"paper_{spec.name}.tex"}
    parts = [f"## {spec.title}", ""]
    if spec.description:
        parts += [spec.description, ""]
    parts += [to_markdown(table.drop(columns=["strategy"])), "ours: mean ± std over the seeds that finished (n = finished/planned), "
              f"from run directories under {runs_dir}."]
    if notes:
        parts += ["", *notes]
    write_text(paths["markdown"], "\n".join(parts) + "\n")
    paths["csv"].parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(paths["csv"], index=False)
    write_text(paths["latex"], to_latex(table.drop(columns=["strategy"]), spec.title) + "".join(f"% {n}\n" for n in notes))
    return paths


def spec_run_dirs(spec: PaperSpec, runs_dir: Path) -> list[Path]:
    return [path for _run, _seed, path, state in plan(spec, runs_dir) if state == "complete"]
