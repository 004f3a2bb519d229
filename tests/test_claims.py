import json
import math

import pandas as pd
import pytest

from harness.reports.claims import _collapsed, calibration_path, claim_tests, claims_table, missing_cells, write_claims
from harness.runs.run import BenchRequest, bench
from harness.scoring.stats import paired_differences, t_interval

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory, data_dir):
    """ws and dinas at two smoke seeds, named as bench names them: what the table must find by itself."""
    import os

    old = os.environ.get("HARNESS_DATA")
    os.environ["HARNESS_DATA"] = str(data_dir)
    runs = tmp_path_factory.mktemp("runs")
    try:
        taus = {}
        for strategy in ("ws", "dinas"):
            for seed in SEEDS:
                metrics = bench(BenchRequest(strategy, preset="smoke", seed=seed, runs_dir=runs, progress=False))
                taus[strategy, seed] = metrics["metrics"]["kendall_tau"]
    finally:
        if old is None:
            os.environ.pop("HARNESS_DATA")
        else:
            os.environ["HARNESS_DATA"] = old
    return runs, taus


def test_claims_table_renders_from_smoke_runs(smoke_runs, tmp_path):
    runs, taus = smoke_runs
    calibration = tmp_path / "calibration"
    tests = claim_tests("smoke", SEEDS, calibration_dir=calibration)
    table = claims_table(tests, runs)
    first = table.iloc[0]
    assert first["test"].startswith("dinas - ws;") and first["n"] == 2
    # The interval is the paired t-interval of stats.py over the per-seed tau differences, read from the runs.
    mean, low, high = t_interval(paired_differences([taus["dinas", s] for s in SEEDS], [taus["ws", s] for s in SEEDS]))
    assert (first["mean"], first["low"], first["high"]) == pytest.approx((mean, low, high))
    expected = "supported" if low > 0 else "not supported" if high < 0 else "no detectable difference"
    assert first["verdict"] == expected and f"{mean:+.3f}" in first["result"]
    rest = table.iloc[1:]
    # Nothing else has runs: each row says so with the command that makes them (GPU rows: "needs GPU").
    for _, row in rest.iterrows():
        preset = row["test"].split("preset ")[1].split(";")[0]
        word = "needs GPU: " if preset in ("paper-shape", "paper") else "not run yet: "
        assert row["verdict"].startswith(word + "python ") and math.isnan(row["mean"]), row["test"]
    function_row = table[table["test"].str.startswith("dinas - ws-function-match")].iloc[0]
    assert "calibrate_dinas_control.py --preset smoke" in function_row["verdict"]
    paths = write_claims(table, runs, tmp_path / "out")
    markdown = paths["markdown"].read_text()
    assert first["result"] in markdown and "not run yet" in markdown and "needs GPU" in markdown
    assert len(pd.read_csv(paths["csv"])) == len(tests) and "\\toprule" in paths["latex"].read_text()
    assert paths["figure"].stat().st_size > 0


def test_calibrated_control_and_missing_cells(smoke_runs, tmp_path):
    runs, _ = smoke_runs
    calibration = tmp_path / "calibration"
    path = calibration_path("smoke", calibration)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"function_match": 0.15}))
    tests = claim_tests("smoke", SEEDS, calibration_dir=calibration)
    row = claims_table(tests, runs).set_index("test").filter(like="ws-function-match", axis=0).iloc[0]
    assert "strategy.ws.function_match=0.15" in row["verdict"] and "calibrate" not in row["verdict"]
    cells = missing_cells(tests, runs)
    # Only CPU runs that do not exist yet: the finished ws/dinas smoke runs and GPU presets are not among them.
    assert cells and all(c.preset not in ("paper", "paper-shape") for c in cells)
    assert not any(c.strategy in ("ws", "dinas") and c.preset == "smoke" and not c.overrides for c in cells)
    assert any(c.overrides == ("strategy.ws.function_match=0.15",) for c in cells)


def test_collapse_counts_skip_dominated_cells():
    skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    good = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert _collapsed({"strategy_summary": {"derived_arch": skip}})
    assert not _collapsed({"strategy_summary": {"derived_arch": good}}) and not _collapsed({})


def test_paper_claims_command_renders_without_running(env_data, tmp_path, capsys):
    from harness.cli import main

    assert main(["paper", "claims", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--preset", "smoke", "--seeds", "0-1"]) == 0
    assert not (tmp_path / "runs").exists()  # nothing was run without --run
    assert (tmp_path / "out" / "paper_claims.md").is_file() and "not run yet" in capsys.readouterr().out


def test_a_claim_with_part_of_its_planned_seeds_gets_no_verdict(smoke_runs, tmp_path):
    """Seeds are fixed in advance; two of three done shows the interim interval and waits for the third."""
    runs, taus = smoke_runs
    first = claims_table(claim_tests("smoke", (0, 1, 2), calibration_dir=tmp_path), runs).iloc[0]
    mean, low, high = t_interval(paired_differences([taus["dinas", s] for s in SEEDS], [taus["ws", s] for s in SEEDS]))
    assert first["n"] == 2 and (first["mean"], first["low"], first["high"]) == pytest.approx((mean, low, high))
    assert first["result"].endswith("interim: 2 of 3 planned seed pairs")
    assert first["verdict"].startswith("incomplete: the verdict waits for all 3 seed pairs: python -m harness compare ")


def test_each_claim_keeps_its_planned_seeds_unless_the_user_names_seeds(tmp_path):
    planned = {t.claim: len(t.seeds) for t in claim_tests("mini", calibration_dir=tmp_path) if t.preset == "mini"}
    assert planned[next(c for c in planned if c.startswith("disturbance-immune (projected)"))] == 9
    assert [n for c, n in planned.items() if "control" in c or "step match" in c] == [16, 16]
    assert {len(t.seeds) for t in claim_tests("mini", range(4), calibration_dir=tmp_path) if t.preset == "mini"} == {4}
