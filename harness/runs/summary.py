"""The one-screen summary printed at the end of a run."""
from __future__ import annotations


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):  # nan: undefined on this set
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
    lines[5:5] = [f"  sparse tau      {_fmt(r.get('sparse_kendall_tau'))} (truth binned at {r.get('sparse_resolution', 0.1)} points)"
                  f"    random-K tau  K=10 {_fmt(r.get('random_10_tau'))}  K=50 {_fmt(r.get('random_50_tau'))}"]
    lines += decomposition_lines(m)
    probe = m.get("probe_metrics")
    if probe:
        lines.insert(3, f"  probe set       tau {_fmt(probe['kendall_tau'])} on {probe['num_archs']} other architectures (choose settings on these)")
    return "\n".join(lines)


def decomposition_lines(m: dict) -> list[str]:
    """The error decomposition against the preset's proxy truth, one line per ranking, same architectures."""
    d = m.get("truth_decomposition")
    if not d:
        note = m.get("truth_decomposition_note")
        return [f"  proxy truth     {note}"] if note else []
    out = [f"  error decomposition on {d['num_archs']} architectures of proxy truth {d['proxy_truth']} "
           f"(seed-to-seed tau {_fmt(d.get('seed_tau'))} on {d.get('seed_tau_archs', 0)})"]
    for key, what in (("estimate_vs_benchmark", "estimate vs benchmark"), ("estimate_vs_proxy", "estimate vs proxy   "),
                      ("proxy_vs_benchmark", "proxy vs benchmark  ")):
        r = d[key]
        lo, hi = r.get("kendall_tau_ci95", [None, None])
        out.append(f"    {what} tau {_fmt(r['kendall_tau'])} ({_fmt(lo)} .. {_fmt(hi)})  rho {_fmt(r['spearman_rho'])}"
                   f"  top-10% tau {_fmt(r.get('kendall_tau_top10pct'))}  sparse {_fmt(r.get('sparse_kendall_tau'))}")
    out.append("    (estimate vs proxy = the weight-sharing error alone; proxy vs benchmark = this task's ceiling)")
    return out
