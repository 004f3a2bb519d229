"""The GPU machine has neither ray nor nasbench_pytorch: importing the harness and running a strategy needs
neither; a sweep or an NB101 standalone network asked for without them fails with one line naming the fix."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter where `import ray` / `import nasbench_pytorch` raise ImportError (sys.modules[...] = None).
SCRIPT = textwrap.dedent("""
    import sys
    for name in ("ray", "nasbench_pytorch"):
        sys.modules[name] = None
    import importlib, pkgutil
    import harness, harness.cli
    from harness.registry import STRATEGIES
    for module in pkgutil.walk_packages(harness.__path__, "harness."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)  # every module imports without them
    assert "ray" not in [m for m, v in sys.modules.items() if v is not None]
    from harness.runs.run import BenchRequest, bench
    runs = sys.argv[1]
    for strategy in ("ws", "darts", "fewshot", "naswot"):
        m = bench(BenchRequest(strategy=strategy, preset="smoke", runs_dir=runs, progress=False, device="cpu",
                               overrides=("train.steps=2", "eval.num_archs=4", "eval.bootstrap=1")))
        print(strategy, "tau", m["metrics"]["kendall_tau"])
    code = harness.cli.main(["sweep", "--strategies", "ws", "--seeds", "0", "--presets", "smoke", "--runs-dir", runs + "/sweep"])
    print("sweep exit", code)
    from harness.errors import HarnessError
    from harness.spaces.nb101.cell import sample
    from harness.spaces.nb101.network import NetworkShape, build_standalone
    import numpy as np
    try:
        build_standalone(sample(np.random.default_rng(0)), NetworkShape())
    except HarnessError as exc:
        print("nb101:", exc)
""")


@pytest.mark.smoke
@pytest.mark.slow
def test_harness_runs_without_ray_and_nasbench_pytorch(tmp_path, env_data):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for strategy in ("ws", "darts", "fewshot", "naswot"):
        assert f"{strategy} tau" in out
    assert "sweep exit 2" in out
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "Ray, which is not installed" in errors[0] and "Traceback" not in done.stderr
    assert "nb101: NB101 standalone networks need nasbench_pytorch" in out
