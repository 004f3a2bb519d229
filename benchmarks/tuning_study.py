"""Choose one setting on probe architectures of tuning seeds: arms of finished runs that differ in that setting.

Each arm (LABEL=RUN_GLOB) is a set of finished runs at tuning seeds (>= 100; verdict seeds are refused); the
first arm is the incumbent, the value the preset ships. Arms may differ in anything that is not the probe set
or the estimator (a strategy option, the epochs, how the held-out rows are taken, ...); the runs of one arm
may differ only in their seed and name. Per arm: its setting (the configuration keys in which arms differ),
its training and estimation images and steps as the runs recorded them, the Kendall tau of the run's own
estimator on the *probe* architectures per seed, the difference to the incumbent paired by seed with a
paired-t interval, and, for runs made with `eval.all_estimators=true`, the tau between the estimates of the
two halves of the held-out images (by loss): how noisy the estimate itself is. Scored architectures are not
read.

The rule, one for every setting docs/noise.md chooses: the incumbent stays unless an arm's probe tau is
higher on every tuning seed the two share; among such arms the highest mean wins. The last line says which.
Arms named by `--not-candidate` are shown and paired like the others but never chosen: a setting a default may
not take (e.g. estimation on the ground truth's own test images), kept to measure what the rule gives up.

usage: python benchmarks/tuning_study.py LABEL=RUN_GLOB [LABEL=RUN_GLOB ...] [--not-candidate LABEL ...] [--csv OUT.csv]
e.g.   python benchmarks/tuning_study.py 'default=results/runs/dinas-nb201-mini-tune-seed*' \
           'strict=results/runs/dinas-strict-nb201-mini-tune-seed*' --csv results/summaries/dinas_defaults_mini.csv
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
from harness.scoring.tuning import choose  # noqa: E402  (the rule every tuning study applies)

from harness.scoring.archsets import TUNING_SEEDS_FROM as FIRST_TUNING_SEED  # noqa: E402  (one boundary for every tuning study)

# What every arm must share: the probe architectures and how they are judged and estimated (config keys, and
# fields of the run's metrics.json).
SHARED_CONFIG = ("eval.probe_archs", "eval.probe_seed", "eval.split_seed", "eval.ground_truth")
SHARED_RECORD = {"preset_space": "space", "estimator": "estimator"}
# What may differ between the runs of one arm.
PER_RUN = ("seed", "name")


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):  # an empty table (a strategy with no options set) adds no key
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_run(path: Path, label: str) -> dict:
    record = json.loads((path / "metrics.json").read_text())
    if record["seed"] < FIRST_TUNING_SEED:
        raise SystemExit(f"tuning_study: {path} is at verdict seed {record['seed']}; accepted: tuning seeds >= {FIRST_TUNING_SEED}")
    if "probe_metrics" not in record:
        raise SystemExit(f"tuning_study: {path} scored no probe architectures; accepted: runs made with eval.probe_archs > 0")
    config_path = path / "config.json"
    config = flatten(json.loads(config_path.read_text())["config"]) if config_path.is_file() else {}
    config = {k: v for k, v in config.items() if not k.startswith("compute.")}  # threads and precision are recorded apart
    config["strategy"] = record["strategy"]
    data = record["data"]
    return {"arm": label, "path": path, "seed": int(record["seed"]), "config": config,
            "shared": {**{k: record.get(field) for k, field in SHARED_RECORD.items()},
                       **{k: config.get(k) for k in SHARED_CONFIG}},
            "training images": int(data["train_images"]), "estimation images": int(data["eval_images"]),
            "of them official test images": int(data.get("holdout_test_images", 0)),
            "training steps": int(record["total_steps"]),
            "probe tau": float(record["probe_metrics"]["kendall_tau"]),
            # runs made with eval.all_estimators=true also score the two halves of their held-out images
            "halves agreement": (record.get("estimators", {}).get("halves", {}).get("loss") or {}).get("agreement_kendall_tau")}


def read_arm(label: str, pattern: str) -> list[dict]:
    paths = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "metrics.json").is_file())
    if not paths:
        raise SystemExit(f"tuning_study: arm {label!r}: no finished run matches {pattern!r}; accepted: a glob of run directories")
    runs = [read_run(p, label) for p in paths]
    first = runs[0]["config"]
    for run in runs[1:]:
        differ = sorted(k for k in set(first) | set(run["config"]) if first.get(k) != run["config"].get(k) and k not in PER_RUN)
        if differ:
            raise SystemExit(f"tuning_study: arm {label!r} mixes settings ({', '.join(differ)}: {runs[0]['path']} vs {run['path']}); "
                             "accepted: runs that differ only in seed and name")
    if len({r["seed"] for r in runs}) != len(runs):
        raise SystemExit(f"tuning_study: arm {label!r} has two runs of one seed; accepted: one run per seed")
    return runs


def setting_keys(arms: list[list[dict]]) -> list[str]:
    """The configuration keys in which the arms differ (what the study varies)."""
    configs = [arm[0]["config"] for arm in arms]
    keys = set().union(*configs)
    return sorted(k for k in keys if k not in PER_RUN and len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1)


def describe(config: dict, keys: list[str]) -> str:
    """`key=value` for each varied key that applies to this arm (another strategy's options do not)."""
    def applies(key: str) -> bool:
        parts = key.split(".")
        return not (parts[0] == "strategy" and len(parts) > 2 and parts[1] != config.get("strategy"))
    return ", ".join(f"{k}={'(preset)' if config.get(k) is None else config.get(k)}" for k in keys if applies(k)) or "-"


def study(arms: list[tuple[str, str]], not_candidates: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str]:
    """(table, choice): one row per arm, and the label the rule chooses among the candidates."""
    unknown = [label for label in not_candidates if label not in {a for a, _ in arms[1:]}]
    if unknown:
        raise SystemExit(f"tuning_study: --not-candidate {unknown[0]!r}; accepted: a label of an arm other than the incumbent "
                         f"({', '.join(a for a, _ in arms[1:]) or 'none'})")
    runs = [read_arm(label, pattern) for label, pattern in arms]
    with_halves = any(r["halves agreement"] is not None for arm in runs for r in arm)
    shared = {json.dumps(r["shared"], sort_keys=True) for arm in runs for r in arm}
    if len(shared) != 1:
        raise SystemExit("tuning_study: the arms differ in their probe set, truth or estimator; accepted: arms that share them:\n"
                         + "\n".join(sorted(shared)))
    keys = setting_keys(runs)
    incumbent = arms[0][0]
    taus = {label: {r["seed"]: r["probe tau"] for r in arm} for (label, _pattern), arm in zip(arms, runs)}
    choice, better = choose(incumbent, taus, not_candidates)
    base = taus[incumbent]
    rows = []
    for (label, _pattern), arm in zip(arms, runs):
        mine = taus[label]
        seeds = sorted(set(mine) & set(base))
        diffs = np.array([mine[s] - base[s] for s in seeds])
        mean, lo, hi = t_interval(diffs) if len(diffs) else (np.nan, np.nan, np.nan)
        higher_everywhere = label in better
        first = arm[0]
        halves = [r["halves agreement"] for r in arm]
        rows.append({"arm": label, "setting": describe(first["config"], keys),
                     "training images": first["training images"], "estimation images": first["estimation images"],
                     "of them official test images": first["of them official test images"],
                     "training steps": first["training steps"], "seeds": ",".join(map(str, sorted(mine))),
                     "probe tau per seed": " / ".join(f"{mine[s]:.3f}" for s in sorted(mine)),
                     "probe tau mean": f"{np.mean(list(mine.values())):.3f}",
                     f"minus {incumbent}, paired [95% t]": ("incumbent" if label == incumbent else
                                                            f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else f"{mean:+.3f}"),
                     "per seed": " / ".join(f"{d:+.3f}" for d in diffs),
                     "higher on every seed": "-" if label == incumbent else ("yes" if higher_everywhere else "no")
                                             + (" (not a candidate)" if label in not_candidates else ""),
                     **({"halves agreement by loss": " / ".join("-" if a is None else f"{a:.2f}" for a in halves)}
                        if with_halves else {})})
    return pd.DataFrame(rows), choice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arms", nargs="+", help="LABEL=RUN_GLOB; the first arm is the incumbent")
    parser.add_argument("--not-candidate", nargs="+", default=[], metavar="LABEL",
                        help="arms shown and paired but never chosen (settings a default may not take)")
    parser.add_argument("--csv", type=Path, help="also write the table here (e.g. under results/summaries/)")
    args = parser.parse_args(argv)
    arms = []
    for text in args.arms:
        label, sep, pattern = text.partition("=")
        if not sep or not label or not pattern:
            raise SystemExit(f"tuning_study: arm {text!r}; accepted: LABEL=RUN_GLOB")
        arms.append((label, pattern))
    if len({label for label, _ in arms}) != len(arms):
        raise SystemExit(f"tuning_study: arm labels repeat ({', '.join(label for label, _ in arms)}); accepted: distinct labels")
    table, choice = study(arms, tuple(args.not_candidate))
    print(table.to_markdown(index=False, disable_numparse=True))
    incumbent = arms[0][0]
    print(f"choice (the incumbent {incumbent} unless a candidate's probe tau is higher on every tuning seed): {choice}"
          + (" (incumbent kept)" if choice == incumbent else f" (replaces {incumbent})"))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
