"""Tables of the split strategies on `mini` (docs/split.md): per-run metrics + split decisions, tau paired with ws by
seed, mean +- std; then Kendall tau inside each sub-supernet against ws ranking the same groups.

    .venv/bin/python benchmarks/split_mini_tables.py [results/runs]
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/runs")
TAGS = ("ws", "fewshot", "gm", "naslid", "fewshot-native", "gm-native", "naslid-native")


def find_runs(root: Path) -> dict[tuple[str, int], Path]:
    """Finished mini runs by (tag, seed), recognised by their recorded config, not their directory name
    (paper specs name override runs with a hash suffix); tag = strategy, + "-native" for budget=native."""
    found = {}
    for cfg_path in sorted(root.glob("*/config.json")):
        rec = json.loads(cfg_path.read_text())
        overrides = rec.get("overrides", [])
        if rec.get("preset") != "mini" or not (cfg_path.parent / "metrics.json").exists():
            continue
        if overrides == [f"strategy.{rec['strategy']}.budget=native"]:
            tag = f"{rec['strategy']}-native"
        elif not overrides:
            tag = rec["strategy"]
        else:
            continue
        if tag in TAGS:
            found.setdefault((tag, rec["seed"]), cfg_path.parent)
    return found


runs = find_runs(root)
keys = [("kendall_tau", "tau"), ("spearman_rho", "rho"), ("kendall_tau_top5pct", "top5% tau"),
        ("kendall_tau_top1pct", "top1% tau"), ("regret", "regret")]
rows = {}
print("| run | steps (x ws) | " + " | ".join(k[1] for k in keys) + " | split decisions (level: edge -> groups) |")
print("|---|---|" + "---|" * len(keys) + "---|")
for tag in TAGS:
    for seed in (0, 1, 2):
        if (tag, seed) not in runs:
            continue
        path = runs[tag, seed] / "metrics.json"
        m = json.loads(path.read_text())
        r = m["metrics"]
        rows.setdefault(tag, []).append([r[k] if r[k] is not None else np.nan for k, _ in keys])
        s = m.get("strategy_summary", {})
        steps = s.get("steps", {}).get("ratio_to_ws", 1.0)
        dec = "; ".join(f"L{d['level']}: e{d['edge']} -> " + "/".join("+".join(g) for g in d["groups"]) for d in s.get("decisions", []))
        dec = dec.replace("nor_conv_", "c").replace("skip_connect", "skip").replace("avg_pool_3x3", "pool")
        print(f"| {tag} s{seed} | {m['total_steps']} ({steps:.1f}) | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in (r[k] for k, _ in keys)) + f" | {dec} |")
print()
taus = {}
for tag in rows:
    for seed in (0, 1, 2):
        if (tag, seed) in runs:
            taus.setdefault(tag, {})[seed] = json.loads((runs[tag, seed] / "metrics.json").read_text())["metrics"]["kendall_tau"]
print("| strategy | n | tau - ws tau (same seed) |")
print("|---|---|---|")
for tag, by_seed in taus.items():
    if tag == "ws":
        continue
    d = [by_seed[s] - taus["ws"][s] for s in by_seed if s in taus.get("ws", {})]
    print(f"| {tag} | {len(d)} | " + ", ".join(f"{x:+.3f}" for x in d) + f" (mean {np.mean(d):+.3f}) |")
print()
print("| strategy | n | " + " | ".join(k[1] for k in keys) + " |")
print("|---|---|" + "---|" * len(keys))
for tag, vals in rows.items():
    a = np.array(vals, dtype=float)
    print(f"| {tag} | {len(a)} | " + " | ".join(f"{np.nanmean(a[:, i]):.3f} ± {np.nanstd(a[:, i]):.3f}" for i in range(len(keys))) + " |")

print()
print("| run | leaves | tau | mean within-sub-supernet tau | ws tau within the same groups (same seed) |")
print("|---|---|---|---|---|")
for s in TAGS[1:]:
    for seed in (0, 1, 2):
        if (s, seed) not in runs or ("ws", seed) not in runs:
            continue
        p = runs[s, seed] / "predictions.csv"
        w = runs["ws", seed] / "predictions.csv"
        a = pd.read_csv(p); b = pd.read_csv(w).set_index("index").loc[a["index"]]
        within, ws_within, weights = [], [], []
        for g, rows in a.groupby("sub_supernet"):
            if len(rows) < 3: continue
            within.append(stats.kendalltau(rows["estimate"], rows["ground_truth"]).statistic)
            ws_within.append(stats.kendalltau(b.loc[rows["index"], "estimate"], rows["ground_truth"].values).statistic)
            weights.append(len(rows))
        t = stats.kendalltau(a["estimate"], a["ground_truth"]).statistic
        print(f"| {s} s{seed} | {a['sub_supernet'].nunique()} | {t:.3f} | {np.average(within, weights=weights):.3f} | {np.average(ws_within, weights=weights):.3f} |")
