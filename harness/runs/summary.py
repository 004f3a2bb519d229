"""The one-screen summary printed at the end of a run."""
from __future__ import annotations


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def one_screen(m: dict) -> str:
    r = m["metrics"]
    lo, hi = r.get("kendall_tau_ci95", [None, None])
    lines = [
        f"{m['strategy']} on {m['space']} (preset {m['preset']}, seed {m['seed']}, BN {m['bn_mode']})",
        f"  scored {r['num_archs']} architectures against {m['ground_truth_column']}",
        f"  Kendall tau     {_fmt(r['kendall_tau'])}  (95% CI {_fmt(lo)} .. {_fmt(hi)})",
        f"  Spearman rho    {_fmt(r['spearman_rho'])}    Pearson r {_fmt(r['pearson_r'])}",
        f"  top-5% tau      {_fmt(r.get('kendall_tau_top5pct'))}  (n={r.get('n_top5pct')})"
        f"    de-isomorphic tau {_fmt(r.get('kendall_tau_deisomorphic'))} (n={r.get('num_archs_deisomorphic')})",
        f"  P@10 {_fmt(r.get('precision_at_10'), 2)}  P@50 {_fmt(r.get('precision_at_50'), 2)}"
        f"  best true rank in predicted top-10: {r.get('best_true_rank_in_top_10')}",
        f"  predicted best  {m['predicted_best']['arch']} (index {m['predicted_best']['index']})",
        f"  regret          {_fmt(r['regret'], 2)} points (its truth {_fmt(r['predicted_best_truth'], 2)}, optimum {_fmt(r['optimum'], 2)})",
        f"  time            train {m['train_seconds']:.0f}s + estimate {m['estimate_seconds']:.0f}s over {m['total_steps']} steps",
    ]
    probe = m.get("probe_metrics")
    if probe:
        lines.insert(3, f"  probe set       tau {_fmt(probe['kendall_tau'])} on {probe['num_archs']} other architectures (choose settings on these)")
    return "\n".join(lines)
