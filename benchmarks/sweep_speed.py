"""N runs through the sweep (local Ray, one run per CPU) vs. the same N runs one after another.

    .venv/bin/python benchmarks/sweep_speed.py [--runs 4] [--preset mini] [--strategies ws] [--seeds 0,1,2,3]
                                               [--set KEY=VALUE ...] [--cpus 2] [--work-dir DIR]

Both sides run the same cells with the same pinned thread count (compute.threads=1 from the preset) and
must give byte-identical predictions; the sweep's time includes starting Ray. The last line is the
wall-time ratio sequential / sweep (above 1: the sweep is faster).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

# This checkout's harness (also the one the Ray workers import), not whichever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.data.paths import data_root  # noqa: E402
from harness.runs.run import bench  # noqa: E402
from harness.runs.sweep import Cell, _start_ray, cell_request, run_cells, summary_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="number of runs (cells), default 4")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--strategies", default="ws", help="comma-separated; cells cycle over strategies x seeds")
    parser.add_argument("--seeds", default=None, help="comma-separated (default 0..runs-1)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance (default 2)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where both sets of run directories go (default a temp dir)")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(range(args.runs))
    grid = itertools.product(args.strategies.split(","), seeds)
    cells = [Cell(strategy=st, preset=args.preset, seed=se, overrides=tuple(args.overrides)) for st, se in itertools.islice(grid, args.runs)]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sweep_speed-"))
    data = str(data_root(None))
    print(f"{len(cells)} runs of preset {args.preset} ({args.strategies}; seeds {seeds[:len(cells)]}) under {work}")

    started = time.perf_counter()
    for cell in cells:
        bench(cell_request(cell, work / "sequential", 1.0, data))
    sequential = time.perf_counter() - started
    print(f"one after another: {sequential:.1f} s")

    started = time.perf_counter()
    ray, _ = _start_ray(None, data, num_cpus=args.cpus)
    ray_start = time.perf_counter() - started
    results = run_cells(cells, work / "sweep", cpus_per_run=1.0, progress=False, data_dir=data)
    swept = time.perf_counter() - started
    ray.shutdown()
    print(summary_table(results))
    print(f"sweep on {args.cpus} CPUs: {swept:.1f} s (of which starting Ray {ray_start:.1f} s)")
    for result in results:
        a = (work / "sequential" / result.run_dir.name / "predictions.csv").read_bytes()
        b = (result.run_dir / "predictions.csv").read_bytes() if result.state == "complete" else b""
        if a != b:
            raise SystemExit(f"{result.run_dir.name}: predictions differ between the sweep and the sequential run ({result.state}: {result.error})")
    print("predictions identical between sweep and sequential runs")
    print(f"wall-time ratio sequential/sweep: {sequential / swept:.2f}")


if __name__ == "__main__":
    main()
