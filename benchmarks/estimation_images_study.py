"""What the estimation images cost: probe tau of runs that differ only in how the held-out rows are taken.

Each arm is a set of finished runs of one strategy and preset at tuning seeds (>= 100), differing from the
other arms only in `data.*` (how many training-split rows are held out, whether official test images are
added to them, how many are estimated on). Per run: its training and estimation images (as the run recorded
them in `metrics.json -> data`) and the Kendall tau of its own estimator on the *probe* architectures; per
arm, the probe tau paired by seed against the reference arm (the first), with a paired-t interval, and (for
runs made with `eval.all_estimators=true`) the Kendall tau between the estimates from the two halves of the
held-out images, by loss: how noisy the estimate itself is. Scored
architectures are not read: the split between training and estimation images is a setting, chosen on
probes and tuning seeds only.

usage: python benchmarks/estimation_images_study.py LABEL=RUN_GLOB [LABEL=RUN_GLOB ...] [--csv OUT.csv]
e.g.   python benchmarks/estimation_images_study.py 'train2000=results/runs/ws-nb201-mini-train2000-seed*' \
           'test1017=results/runs/ws-nb201-mini-test1017-seed*' --csv results/summaries/estimation_images_mini.csv
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.scoring.stats import t_interval  # noqa: E402

from harness.strategies.dinas.calibrate import TUNING_SEEDS_FROM as FIRST_TUNING_SEED  # noqa: E402  (one boundary for every tuning study)


def read_arm(label: str, pattern: str) -> list[dict]:
    paths = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "metrics.json").is_file())
    if not paths:
        raise SystemExit(f"estimation_images_study: arm {label!r}: no finished run matches {pattern!r}; accepted: a glob of run directories")
    rows = []
    for path in paths:
        record = json.loads((path / "metrics.json").read_text())
        if record["seed"] < FIRST_TUNING_SEED:
            raise SystemExit(f"estimation_images_study: {path} is at verdict seed {record['seed']}; accepted: tuning seeds >= {FIRST_TUNING_SEED}")
        data = record["data"]
        rows.append({"arm": label, "seed": int(record["seed"]), "strategy": record["strategy"], "preset": record["preset"],
                     "estimator": record["estimator"], "training images": int(data["train_images"]),
                     "estimation images": int(data["eval_images"]),
                     "of them official test images": int(data.get("holdout_test_images", 0)),
                     "training steps": int(record["total_steps"]),
                     "probe archs": int(record["probe_metrics"]["num_archs"]),
                     "probe tau": float(record["probe_metrics"]["kendall_tau"]),
                     # runs made with eval.all_estimators=true also score the two halves of their held-out images
                     "halves agreement": (record.get("estimators", {}).get("halves", {}).get("loss") or {}).get("agreement_kendall_tau")})
    return rows


def study(arms: list[tuple[str, str]]) -> pd.DataFrame:
    rows = [row for label, pattern in arms for row in read_arm(label, pattern)]
    frame = pd.DataFrame(rows)
    kinds = frame[["strategy", "preset", "estimator", "probe archs"]].drop_duplicates()
    if len(kinds) != 1:
        raise SystemExit(f"estimation_images_study: the arms mix strategies, presets, estimators or probe sets:\n{kinds.to_string(index=False)}")
    reference = arms[0][0]
    base = frame[frame["arm"] == reference].set_index("seed")["probe tau"]
    out = []
    for label, _pattern in arms:
        mine = frame[frame["arm"] == label].set_index("seed")
        seeds = sorted(set(mine.index) & set(base.index))
        diffs = np.array([mine.loc[s, "probe tau"] - base.loc[s] for s in seeds])
        mean, lo, hi = t_interval(diffs) if len(diffs) > 1 else (float(diffs.mean()) if len(diffs) else np.nan, np.nan, np.nan)
        first = mine.iloc[0]
        out.append({"arm": label, "training images": first["training images"], "estimation images": first["estimation images"],
                    "of them official test images": first["of them official test images"],
                    "training steps": first["training steps"], "seeds": ",".join(map(str, mine.index)),
                    "probe tau per seed": " / ".join(f"{t:.3f}" for t in mine["probe tau"]),
                    "probe tau mean": f"{mine['probe tau'].mean():.3f}",
                    f"minus {reference}, paired [95% t]": ("reference" if label == reference else
                                                           f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else f"{mean:+.3f}"),
                    "per seed": " / ".join(f"{d:+.3f}" for d in diffs),
                    "halves agreement by loss": " / ".join("-" if pd.isna(a) else f"{a:.2f}" for a in mine["halves agreement"])})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arms", nargs="+", help="LABEL=RUN_GLOB; the first arm is the reference")
    parser.add_argument("--csv", type=Path, help="also write the table here (e.g. under results/summaries/)")
    args = parser.parse_args(argv)
    arms = []
    for text in args.arms:
        label, sep, pattern = text.partition("=")
        if not sep or not label or not pattern:
            raise SystemExit(f"estimation_images_study: arm {text!r}; accepted: LABEL=RUN_GLOB")
        arms.append((label, pattern))
    table = study(arms)
    print(table.to_markdown(index=False))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
