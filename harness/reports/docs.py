"""Numbers quoted in README.md and docs/*.md, generated from committed result summaries (`make docs`).

A document marks a block with `<!-- generated:NAME -->` ... `<!-- /generated -->`; only the text between the
two markers is rewritten. NAME is one of:
- `regress-baseline`: the CI gate's baseline, results/baselines/regress.json (Kendall tau per seed);
- `summary/STEM`: the table results/summaries/STEM.csv (any summary a report writes, e.g. a compare's
  strategies.csv or paired.csv copied there when its verdict is quoted). A copy of `tables`' runs.csv is
  shown by its ranking columns (mean over seeds, ± the seed sd where there are several); a copy of
  `compare`'s paired.csv as compare prints it, with the truth, the estimator and the test in every row;
- `verdict/STEM`: the verdict sentences `compare` prints for such a paired.csv copy, one per pair.
tests/test_docs.py fails when a committed document differs from what this module generates.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError

# Markers stand on lines of their own (a marker quoted inside a sentence is not one).
BLOCK = re.compile(r"^(<!-- generated:(?P<name>[A-Za-z0-9_./-]+) -->\n)(?P<body>.*?)^(<!-- /generated -->)$", re.S | re.M)
OPENING = re.compile(r"^<!-- generated:", re.M)
BASELINE = Path("results/baselines/regress.json")
SUMMARIES = Path("results/summaries")


def documents(root: Path) -> list[Path]:
    """README.md and every page under docs/."""
    root = Path(root)
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def regress_baseline(root: Path) -> str:
    from harness.gate.regression import drops_caught_with_power, load_baseline, smallest_caught_drops
    from harness.scoring.stats import t_interval

    path = Path(root) / BASELINE
    baseline = load_baseline(path)
    if baseline is None:
        raise HarnessError(f"generated block regress-baseline: {path} does not exist; record it with `make rebaseline`")
    rows = []
    for name, entry in baseline.strategies.items():
        k = len(entry.taus)
        drop = smallest_caught_drops(baseline, k)[name]
        powered = drops_caught_with_power(baseline, k)[name]
        mean, lo, hi = t_interval(entry.taus)
        rows.append({
            "strategy": f"`{name}`",
            "seeds": ",".join(map(str, entry.seeds)),
            "Kendall tau, mean [95% t-interval]": f"{_num(mean)} [{_num(lo)}, {_num(hi)}]",
            "seed sd": _num(entry.sd),
            "per seed": " / ".join(_num(t) for t in entry.taus),
            f"gate fails on a mean drop > (K={k})": _num(drop),
            "drop caught with 80% probability": _num(powered),
        })
    table = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    from harness.config import resolve

    cfg = resolve(baseline.preset)
    commit = (baseline.commit or "unknown")[:10]
    recorded = (baseline.recorded_at or "unknown")[:10]
    return (f"{table}\n\nFrom `{BASELINE.as_posix()}`: preset `{baseline.preset}` ({cfg.eval.num_archs} scored architectures "
            f"against `{cfg.eval.ground_truth}`, estimator `{cfg.eval.estimator}`), recorded {recorded} at commit `{commit}` "
            f"on `{baseline.platform}`.\n")


# A `tables` summary (results/tables/runs.csv copied to results/summaries/) is shown by these columns.
RANKING_VIEW = (("strategy", "strategy", None), ("preset", "preset", None), ("overrides", "overrides", None),
                ("seeds", "seeds", None), ("kendall_tau_mean", "Kendall tau", 3), ("spearman_rho_mean", "Spearman", 3),
                ("kendall_tau_top5pct_mean", "top-5% tau", 3), ("precision_at_50_mean", "P@50", 2), ("regret_mean", "regret", 2))


def _ranking_view(frame: pd.DataFrame) -> pd.DataFrame:
    view = pd.DataFrame()
    for column, header, digits in RANKING_VIEW:
        values = frame[column] if column in frame else pd.Series([""] * len(frame))
        if digits is None:
            view[header] = [f"`{v}`" if column == "strategy" else (v or "-") for v in values]
        else:
            view[header] = [_num(float(v), digits) if v not in ("", None) else "n/a" for v in values]
    if "kendall_tau_std" in frame:  # a spread over seeds beside the mean, where there are several
        view["Kendall tau"] = [t if not sd else f"{t} ± {float(sd):.3f}" for t, sd in zip(view["Kendall tau"], frame["kendall_tau_std"])]
    return view


# A copy of compare's paired.csv is recognised by the columns of its decision rule.
PAIRED_COLUMNS = ("label", "reference", "mean_diff", "t_lo", "t_hi", "p_t")


def _summary_path(root: Path, kind: str, stem: str) -> Path:
    path = Path(root) / SUMMARIES / f"{stem}.csv"
    if not path.is_file():
        found = sorted(p.stem for p in (Path(root) / SUMMARIES).glob("*.csv"))
        raise HarnessError(f"generated block {kind}/{stem}: {path} does not exist; accepted: {', '.join(found) or 'none yet'}")
    return path


def _paired_frame(path: Path, kind: str) -> pd.DataFrame | None:
    frame = pd.read_csv(path, dtype={"label": str, "reference": str, "seeds": str}, keep_default_na=False)
    if not all(c in frame for c in PAIRED_COLUMNS):
        if kind == "verdict":
            raise HarnessError(f"generated block verdict/{path.stem}: {path} is not a copy of compare's paired.csv "
                               f"(accepted: a CSV with columns {', '.join(PAIRED_COLUMNS)})")
        return None
    numeric = [c for c in frame if c not in ("label", "reference", "seeds", "truth", "estimator", "test")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    return frame


def _paired_view(frame: pd.DataFrame) -> pd.DataFrame:
    from harness.reports.compare import show_paired

    view = show_paired(frame)
    for position, column in enumerate(("truth", "estimator", "test"), start=1):
        view.insert(position, column, frame[column] if column in frame else "not recorded")
    return view


def summary_table(root: Path, stem: str) -> str:
    path = _summary_path(root, "summary", stem)
    paired = _paired_frame(path, "summary")
    if paired is not None:
        frame = _paired_view(paired)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "kendall_tau_mean" in frame:
            frame = _ranking_view(frame)
    return f"{frame.to_markdown(index=False, disable_numparse=True)}\n\nFrom `{(SUMMARIES / path.name).as_posix()}`.\n"


def verdict_lines(root: Path, stem: str) -> str:
    from harness.reports.compare import verdict

    frame = _paired_frame(_summary_path(root, "verdict", stem), "verdict")
    truths = frame["truth"] if "truth" in frame else ["not recorded"] * len(frame)
    lines = [f"- {line} [truth: {truth}]" for line, truth in zip(verdict(frame), truths)]
    return "\n".join(lines) + f"\n\nFrom `{(SUMMARIES / f'{stem}.csv').as_posix()}`.\n"


def render(name: str, root: Path) -> str:
    if name == "regress-baseline":
        return regress_baseline(root)
    kind, _, stem = name.partition("/")
    if kind in ("summary", "verdict") and re.fullmatch(r"[A-Za-z0-9_.-]+", stem):
        return summary_table(root, stem) if kind == "summary" else verdict_lines(root, stem)
    raise HarnessError(f"unknown generated block {name!r}; accepted: regress-baseline, summary/STEM, verdict/STEM "
                       "(results/summaries/STEM.csv)")


def fill(text: str, root: Path, where: str = "document") -> str:
    """`text` with every generated block rewritten from the summaries under `root`."""
    def replace(match: re.Match) -> str:
        try:
            body = render(match.group("name"), root)
        except HarnessError as exc:
            raise HarnessError(f"{where}: {exc}") from None
        return f"{match.group(1)}{body}{match.group(4)}"

    opened = len(OPENING.findall(text))
    if opened != len(BLOCK.findall(text)):
        raise HarnessError(f"{where}: a `<!-- generated:NAME -->` marker has no `<!-- /generated -->` after it")
    return BLOCK.sub(replace, text)


def generate(root: Path, check: bool = False) -> list[Path]:
    """Rewrites the generated blocks of every document (or with `check`, writes nothing); returns the documents
    whose text differs from what the summaries give."""
    from harness.runs.fileio import write_text

    stale = []
    for path in documents(root):
        text = path.read_text()
        new = fill(text, root, str(path.relative_to(root)))
        if new != text:
            stale.append(path)
            if not check:
                write_text(path, new)
    return stale
