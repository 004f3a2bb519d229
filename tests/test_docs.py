"""The numbers in README.md and docs/*.md are the generator's output from the committed summaries."""
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

from harness.cli import main
from harness.errors import HarnessError
from harness.reports.docs import documents, fill, generate

ROOT = Path(__file__).resolve().parents[1]


def test_committed_documents_equal_what_make_docs_generates():
    stale = generate(ROOT, check=True)
    assert stale == [], f"run `make docs` (python -m harness docs): {[str(p.relative_to(ROOT)) for p in stale]} out of date"
    assert "<!-- generated:regress-baseline -->" in (ROOT / "README.md").read_text()


def test_readme_stays_a_two_minute_read():
    assert len((ROOT / "README.md").read_text().encode()) < 9000


def test_a_summary_csv_fills_its_block_and_only_its_block(tmp_path):
    (tmp_path / "results" / "summaries").mkdir(parents=True)
    (tmp_path / "results" / "summaries" / "verdict.csv").write_text("variant,tau\nws,0.396\ndinas,0.360\n")
    text = "intro\n<!-- generated:summary/verdict -->\nstale 0.1\n<!-- /generated -->\noutro 0.2\n"
    filled = fill(text, tmp_path)
    assert "stale" not in filled and "| dinas     | 0.360 |" in filled and filled.startswith("intro\n")
    assert filled.endswith("<!-- /generated -->\noutro 0.2\n")
    assert fill(filled, tmp_path) == filled  # idempotent


def test_the_baseline_block_is_computed_from_the_committed_json(tmp_path):
    import json
    import shutil
    (tmp_path / "results" / "baselines").mkdir(parents=True)
    shutil.copy(ROOT / "results" / "baselines" / "regress.json", tmp_path / "results" / "baselines" / "regress.json")
    raw = json.loads((tmp_path / "results" / "baselines" / "regress.json").read_text())
    raw["strategies"]["ws"]["taus"] = [0.5, 0.5, 0.5, 0.7]
    (tmp_path / "results" / "baselines" / "regress.json").write_text(json.dumps(raw))
    filled = fill("<!-- generated:regress-baseline -->\n<!-- /generated -->\n", tmp_path)
    assert "0.500 / 0.500 / 0.500 / 0.700" in filled and "0.550 [" in filled


def test_bad_blocks_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="unknown generated block 'nope'; accepted: regress-baseline, summary/STEM, verdict/STEM"):
        fill("<!-- generated:nope -->\n<!-- /generated -->\n", tmp_path)
    with pytest.raises(HarnessError, match=r"summary/absent: .*absent.csv does not exist"):
        fill("<!-- generated:summary/absent -->\n<!-- /generated -->\n", tmp_path)
    with pytest.raises(HarnessError, match="has no `<!-- /generated -->`"):
        fill("<!-- generated:regress-baseline -->\nno end\n", tmp_path)


def test_docs_check_command_reports_a_drifted_page(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "results" / "summaries").mkdir(parents=True)
    (tmp_path / "results" / "summaries" / "t.csv").write_text("a\n1\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text("<!-- generated:summary/t -->\nhand-typed\n<!-- /generated -->\n")
    assert documents(tmp_path) == [page]
    assert main(["docs", "--root", str(tmp_path), "--check"]) == 1 and "out of date" in capsys.readouterr().out
    assert main(["docs", "--root", str(tmp_path)]) == 0 and "hand-typed" not in page.read_text()
    assert main(["docs", "--root", str(tmp_path), "--check"]) == 0


def test_a_tables_summary_is_shown_by_its_ranking_columns(tmp_path):
    (tmp_path / "results" / "summaries").mkdir(parents=True)
    (tmp_path / "results" / "summaries" / "runs.csv").write_text(
        "strategy,preset,overrides,seeds,n,kendall_tau_mean,kendall_tau_std,spearman_rho_mean,kendall_tau_top5pct_mean,"
        "precision_at_50_mean,regret_mean,wall_seconds_mean\n"
        "ws,mini,,\"0,1\",2,0.39612,0.0621,0.5701,0.175,0.5,2.7211,300\n"
        "params,mini,eval.flip=false,0,1,0.586115,,0.766198,-0.105802,0.46,0.683333,165\n")
    filled = fill("<!-- generated:summary/runs -->\n<!-- /generated -->\n", tmp_path)
    assert "| `ws`       | mini     | -               | 0,1     | 0.396 ± 0.062 |" in filled
    assert "| `params`   | mini     | eval.flip=false | 0       | 0.586" in filled
    assert "wall" not in filled and "300" not in filled  # run times live elsewhere


def test_a_compare_paired_summary_renders_as_compare_prints_it_with_its_verdict(tmp_path):
    """compare's own paired.csv, copied to results/summaries/, is shown with the truth, estimator and test in
    every row, its interval is scipy's ttest_rel one, and its verdict block says what compare says."""
    import json
    import shutil

    import numpy as np

    from harness.reports import compare as cmp
    from harness.runs.sweep import Cell, CellResult
    from harness.scoring import stats

    truth = np.arange(30.0)
    results, taus = [], {"a": [], "b": []}
    for label, scale in (("a", 3.0), ("b", 12.0)):
        for seed in range(4):
            estimate = truth + np.random.default_rng(seed + (0 if label == "a" else 50)).normal(scale=scale, size=30)
            run = tmp_path / "runs" / f"{label}-{seed}"
            run.mkdir(parents=True)
            pd.DataFrame({"index": np.arange(30), "estimate": estimate, "ground_truth": truth}).to_csv(run / "predictions.csv", index=False)
            taus[label].append(stats.kendall(estimate, truth))
            (run / "metrics.json").write_text(json.dumps({"estimator": "final-loss-flip", "metrics": {"kendall_tau": taus[label][-1]}}))
            results.append(CellResult(Cell(label, seed=seed, label=label), run, "complete", None, taus[label][-1]))
    variants = [cmp.Variant("a", "a"), cmp.Variant("b", "b")]
    _text, paths = cmp.write_report(cmp.read_results(results), variants, "b", tmp_path / "out", "t", arch_resamples=20)
    (tmp_path / "results" / "summaries").mkdir(parents=True)
    shutil.copy(paths["paired_csv"], tmp_path / "results" / "summaries" / "v.csv")
    table = fill("<!-- generated:summary/v -->\n<!-- /generated -->\n", tmp_path)
    expected = scipy.stats.ttest_rel(taus["a"], taus["b"]).confidence_interval()
    assert f"[{expected.low:.3f}, {expected.high:.3f}]" in table
    assert "| benchmark | final-loss-flip | paired t-test on per-seed tau differences" in table and "4 (0,1,2,3)" in table
    said = fill("<!-- generated:verdict/v -->\n<!-- /generated -->\n", tmp_path)
    assert said.count("\n- ") + said.startswith("- ") == 1 and "[truth: benchmark]" in said
    assert said.splitlines()[1] == f"- {cmp.verdict(pd.read_csv(paths['paired_csv']))[0]} [truth: benchmark]"
    (tmp_path / "results" / "summaries" / "t.csv").write_text("a\n1\n")
    with pytest.raises(HarnessError, match="verdict/t: .* is not a copy of compare's paired.csv"):
        fill("<!-- generated:verdict/t -->\n<!-- /generated -->\n", tmp_path)
