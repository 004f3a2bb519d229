"""The value of `strategy.ws.function_match` (the function-space step-match control of dinas), from dinas runs at
tuning seeds (>= 100, never verdict seeds).

Runs `dinas` (the preset's default options, plus any --set) at each seed unless a finished run of that name
exists in --runs-dir, then prints each run's `protection_fresh` (mean ||dW X|| / ||dW_ws X|| on fresh rows) and
their mean, the factor to pass to the control:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibrate_dinas_control.py \
        --preset mini --seeds 100,101
    python -m harness bench --strategy ws --preset mini --seed S --set strategy.ws.function_match=VALUE
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere in the checkout

from harness.errors import HarnessError  # noqa: E402
from harness.reports.compare import parse_seeds  # noqa: E402
from harness.runs.run import RUNS_DIR, BenchRequest, bench, run_name  # noqa: E402
from harness.strategies.dinas.calibrate import check_tuning_seeds, function_match_value  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--seeds", default="100,101", help="tuning seeds (>= 100), e.g. 100,101 or 100-103")
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra dinas overrides (KEY=VALUE)")
    parser.add_argument("--no-run", action="store_true", help="use finished runs only; start none")
    parser.add_argument("--write", action="store_true", help="record the value where the claims table reads it "
                        "(results/calibration/dinas-function-match-PRESET.json)")
    parser.add_argument("--calibration-dir", type=Path, default=None, help="with --write: the folder (default results/calibration)")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        check_tuning_seeds(seeds)
        summaries = {}
        for seed in seeds:
            req = BenchRequest("dinas", preset=args.preset, seed=seed, overrides=tuple(args.overrides), runs_dir=args.runs_dir, progress=False)
            metrics_path = Path(args.runs_dir) / run_name(req) / "metrics.json"
            if metrics_path.is_file():
                metrics = json.loads(metrics_path.read_text())
            elif args.no_run:
                raise HarnessError(f"no finished dinas run {metrics_path.parent} (drop --no-run to make it)")
            else:
                print(f"running dinas --preset {args.preset} --seed {seed} -> {metrics_path.parent}", flush=True)
                metrics = bench(req)
            summaries[seed] = metrics["strategy_summary"]
        result = function_match_value(summaries)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for seed, value in result["per_seed_protection_fresh"].items():
        print(f"seed {seed}: protection_fresh {value:.4f}  mean_kept_grad_norm {result['mean_kept_grad_norm'][seed]:.4f}")
    print(f"function_match = {result['function_match']}  (mean over seeds {seeds}; spread {result['spread'][0]:.4f}..{result['spread'][1]:.4f})")
    if args.write:
        from harness.reports.claims import CALIBRATION_DIR, calibration_path
        from harness.runs.envinfo import git_state
        from harness.runs.fileio import write_json

        path = calibration_path(args.preset, args.calibration_dir or CALIBRATION_DIR)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"preset": args.preset, "seeds": seeds, "overrides": args.overrides, "git": git_state(), **result})
        print(f"wrote {path}")
    print(f"control: python -m harness bench --strategy ws --preset {args.preset} --seed S --set strategy.ws.function_match={result['function_match']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
