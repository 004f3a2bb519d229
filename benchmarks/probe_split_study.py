"""Scored and probe architectures before and after the split into strict-isomorphism halves (no training).

Before: `mini`'s 500 scored architectures drawn uniformly from the whole space (arch_seed 0) and 200 probes
kept apart from them by the benchmark's `nb201` string rule only (probe_seed 1). After: both drawn as
harness/scoring/archsets.py draws them (distinct function classes of their own half, split_seed 0). Prints,
for each: probes that compute the same function (`strict` rule) as a scored architecture, the share of each
set in multi-member classes, the truth means and the two-sample KS p of the truths.

usage: python benchmarks/probe_split_study.py [--csv results/summaries/probe_split_nb201.csv]
(docs/noise.md renders that CSV.)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.registry import SPACES
from harness.scoring.archsets import arch_split, function_classes, probe_archs, scored_archs
from harness.scoring.groundtruth import load_ground_truth
from harness.spaces.nb201.isomorphism import canonical_form


def before(gt) -> tuple[np.ndarray, np.ndarray]:
    scored = np.sort(np.random.default_rng(0).choice(len(gt.table), size=500, replace=False))
    taken = {canonical_form(gt.arch_of(int(i)), "nb201") for i in scored}
    probes = []
    for i in np.random.default_rng(1).permutation(len(gt.table)):
        form = canonical_form(gt.arch_of(int(i)), "nb201")
        if form not in taken:
            taken.add(form)
            probes.append(int(i))
            if len(probes) == 200:
                break
    return scored, np.array(probes)


def after(space, gt) -> tuple[np.ndarray, np.ndarray]:
    rows = lambda archs: np.array([gt.index_of(a) for a in archs])  # noqa: E731
    return rows(scored_archs(space, gt, 500, 0)), rows(probe_archs(space, gt, 200, 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="also write the table here (e.g. results/summaries/probe_split_nb201.csv)")
    args = parser.parse_args(argv)
    gt = load_ground_truth()
    space = SPACES.get("nb201")()
    ids = function_classes(space, gt)
    size = np.bincount(ids)
    truth = gt.table["cifar10_test"].to_numpy()
    rows = []
    for name, (s, p) in (("before: 500 uniform over the space, 200 probes kept apart by the nb201 rule", before(gt)),
                         ("after: strict-class halves, split_seed 0", after(space, gt))):
        rows.append({"sets": name, "probes computing a scored arch's function": f"{int(np.isin(ids[p], ids[s]).sum())} / {len(p)}",
                     "in multi-member classes (scored / probes)": f"{np.mean(size[ids[s]] > 1):.3f} / {np.mean(size[ids[p]] > 1):.3f}",
                     "truth mean (scored / probes)": f"{truth[s].mean():.2f} / {truth[p].mean():.2f}",
                     "KS p": f"{stats.ks_2samp(truth[s], truth[p]).pvalue:.3f}",
                     f"distinct functions among the {len(s)} scored": len(set(ids[s]))})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    print(arch_split(space, gt, 0).describe())
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
