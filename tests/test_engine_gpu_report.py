"""`benchmarks/gpu_report.py --quick` runs end to end on the CPU and writes every figure of the GPU report."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_gpu_report_writes_every_figure(tmp_path, env_data):
    spec = importlib.util.spec_from_file_location("gpu_report", REPO / "benchmarks" / "gpu_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])
    written = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert written == json.loads(json.dumps(report))
    md = next(tmp_path.glob("*.md")).read_text()
    for heading in ("ws step at", "Step cost of every strategy", "Estimation on", "Split criterion memory", "Complete `smoke` ws run"):
        assert heading in md
    figures = report["ws_vs_standalone"]
    assert figures["ws_step_ms"] > 0 and figures["standalone_step_ms"] > 0 and figures["paper_protocol_steps"] == 195_500
    assert set(figures["ws_step_ms_by_compute"]) == {"fp32", "bf16", "channels_last", "bf16+channels_last"}
    costs = report["strategy_costs"]
    assert costs["ws"]["relative_to_ws"] == 1.0 and costs["darts"]["step_ms"] > 0 and costs["synflow"]["step_ms"] is None
    assert report["estimation"]["batched_archs_per_s"] > 0 and report["estimation"]["per_arch_archs_per_s"] > 0
    assert report["split_memory"]["naslid_peak_mib"] >= 0 and report["split_memory"]["gm_peak_mib"] > 0
    assert report["paper_shape_run"]["num_archs"] == 20 and -1 <= report["paper_shape_run"]["kendall_tau"] <= 1
    assert report["device"]["cuda_version"] is None
    assert not (REPO / "results" / "gpu").exists() or not any((REPO / "results" / "gpu").glob("*quick*"))
