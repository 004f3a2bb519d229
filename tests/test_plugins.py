"""Strategies from outside the harness package: a throwaway plug-in package in tmp_path, found through
--plugin and through an entry point, run by `bench` and by a Ray `sweep` in fresh interpreters."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.plugins import check_names, load_plugins
from harness.registry import Registry

ROOT = Path(__file__).resolve().parents[1]

STRATEGY = '''
import numpy as np

from harness.registry import STRATEGIES
from harness.strategies.base import Strategy


class CountConvs(Strategy):
    """Training-free: more 3x3 (then 1x1) convolutions = predicted better."""

    name = "{name}"

    def training_steps(self):
        return 0

    def train_step(self, step, images, labels, arch=None):
        raise RuntimeError("training-free")

    def estimate(self, archs):
        return {{"score": np.array([str(a).count("conv_3x3") + 0.5 * str(a).count("conv_1x1") for a in archs], dtype=float)}}
'''


@pytest.fixture
def plugin_dirs(tmp_path):
    """src/: a package whose module registers `convcount` itself (for --plugin). site/: a module with an
    unregistered class and a distribution's dist-info declaring it as the entry point `convcount-ep`."""
    src, site = tmp_path / "src", tmp_path / "site"
    (src / "demo_harness_plugin").mkdir(parents=True)
    (src / "demo_harness_plugin" / "__init__.py").write_text("")
    (src / "demo_harness_plugin" / "strategy.py").write_text(
        STRATEGY.format(name="convcount") + '\nSTRATEGIES.register("convcount")(CountConvs)\n')
    site.mkdir()
    (site / "demo_harness_ep.py").write_text(STRATEGY.format(name="convcount-ep"))
    dist = site / "demo_harness_ep-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-harness-ep\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.strategies]\nconvcount-ep = demo_harness_ep:CountConvs\n")
    return src, site


def _harness(args, data_dir, pythonpath=(), code=None):
    env = {**os.environ, "HARNESS_DATA": str(data_dir), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *map(str, pythonpath)])}
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "harness", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_bench_runs_a_plugin_strategy_named_by_plugin_and_records_it(plugin_dirs, data_dir, tmp_path):
    src, _site = plugin_dirs
    runs = tmp_path / "runs"
    args = ["bench", "--plugin", "demo_harness_plugin.strategy", "--strategy", "convcount", "--preset", "smoke",
            "--runs-dir", str(runs), "--no-progress"]
    done = _harness(args, data_dir, [src])
    assert done.returncode == 0, done.stderr
    assert "convcount on nb201" in done.stdout and "Kendall tau" in done.stdout
    record = json.loads((runs / "convcount-nb201-smoke-seed0" / "config.json").read_text())
    assert record["plugins"] == ["demo_harness_plugin.strategy"]
    assert record["identity"]["plugins"] == ["demo_harness_plugin.strategy"]
    assert record["origins"]["strategy"] == "--plugin demo_harness_plugin.strategy"
    listed = _harness(["list", "--plugin", "demo_harness_plugin.strategy"], data_dir, [src])
    assert "convcount (--plugin demo_harness_plugin.strategy)" in listed.stdout
    # Without the plug-in the name means nothing: a one-line error, no traceback.
    again = _harness(["bench", "--strategy", "convcount", "--preset", "smoke", "--runs-dir", str(runs), "--resume"], data_dir, [src])
    assert again.returncode == 2 and "unknown strategy 'convcount'" in again.stderr and "Traceback" not in again.stderr


def test_bench_finds_a_strategy_through_an_entry_point(plugin_dirs, data_dir, tmp_path):
    _src, site = plugin_dirs
    listed = _harness(["list"], data_dir, [site])
    assert "convcount-ep (entry point demo-harness-ep)" in listed.stdout, listed.stdout + listed.stderr
    done = _harness(["bench", "--strategy", "convcount-ep", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"],
                    data_dir, [site])
    assert done.returncode == 0, done.stderr
    assert "convcount-ep on nb201" in done.stdout
    record = json.loads((tmp_path / "convcount-ep-nb201-smoke-seed0" / "config.json").read_text())
    assert record["origins"]["strategy"] == "entry point demo-harness-ep"


def test_a_sweep_imports_plugins_in_its_ray_workers(plugin_dirs, data_dir, tmp_path):
    pytest.importorskip("ray")
    src, site = plugin_dirs
    # The driver finds both plug-ins on its sys.path only (not PYTHONPATH): the workers must be told where.
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(src)!r}, {str(site)!r}]
        from harness.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    args = ["sweep", "--plugin", "demo_harness_plugin.strategy", "--strategies", "convcount,convcount-ep", "--seeds", "0",
            "--presets", "smoke", "--runs-dir", str(tmp_path), "--no-progress", "--cpus-per-run", "1"]
    done = _harness(args, data_dir, code=code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2/2 runs complete" in done.stdout
    for name in ("convcount", "convcount-ep"):
        metrics = json.loads((tmp_path / f"{name}-nb201-smoke-seed0" / "metrics.json").read_text())
        assert -1 <= metrics["metrics"]["kendall_tau"] <= 1


def test_plugin_errors_name_the_plugin(tmp_path, monkeypatch):
    (tmp_path / "demo_broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "demo_needs_missing.py").write_text("import demo_not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HarnessError, match=r"plug-in 'demo_broken_plugin' failed to import: RuntimeError: boom at import"):
        load_plugins(["demo_broken_plugin"])
    with pytest.raises(HarnessError, match=r"plug-in 'demo_needs_missing' cannot be imported \(it imports 'demo_not_installed_anywhere'"):
        load_plugins(["demo_needs_missing"])
    with pytest.raises(HarnessError, match=r"plug-in 'demo_absent_module' cannot be imported"):
        load_plugins(["demo_absent_module"])
    with pytest.raises(HarnessError, match=r"--plugin 'my-pkg/mod.py' is not a module name"):
        check_names(["my-pkg/mod.py"])


def test_a_plugin_that_reuses_a_builtin_name_is_refused_naming_it(tmp_path, monkeypatch):
    (tmp_path / "demo_clash_plugin.py").write_text(
        "from harness.registry import FEATURES\n@FEATURES.register('disturbance')\ndef make(*a, **k):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HarnessError, match=r"feature 'disturbance' registered twice \(built-in, then --plugin demo_clash_plugin\)"):
        load_plugins(["demo_clash_plugin"])


def test_a_broken_entry_point_is_one_line_naming_it(tmp_path, monkeypatch):
    dist = tmp_path / "demo_bad_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-bad-ep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[harness.demo_test_group]\nbad = demo_missing_ep_module:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("feature", "harness.features", "harness.demo_test_group")
    with pytest.raises(HarnessError, match=r"plug-in 'demo_missing_ep_module:Thing' \(entry point 'bad' in group "
                                           r"harness.demo_test_group of demo-bad-ep\) failed to load: ModuleNotFoundError"):
        registry.names()


def test_plugins_key_of_a_preset_is_not_a_setting():
    from harness.config import resolve
    with pytest.raises(HarnessError, match="plug-ins are not a setting; accepted: --plugin MODULE"):
        resolve("smoke", ["plugins=['x']"])


def test_a_presets_plugins_are_imported_and_become_part_of_the_runs_identity(tmp_path, monkeypatch):
    import harness.config as config
    from harness.runs.identity import config_identity
    from harness.runs.run import BenchRequest, plan

    (tmp_path / "demo_preset_plugin.py").write_text("IMPORTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = config._read_preset
    monkeypatch.setattr(config, "_read_preset", lambda name, space=None: {**real(name, space), "plugins": ["demo_preset_plugin"]})
    p = plan(BenchRequest(strategy="params", preset="smoke", runs_dir=tmp_path / "runs", device="cpu"))
    assert sys.modules["demo_preset_plugin"].IMPORTED and p.req.plugins == ("demo_preset_plugin",)
    assert config_identity(p.req, p.cfg, p.options)["plugins"] == ["demo_preset_plugin"]
    monkeypatch.setattr(config, "_read_preset", lambda name, space=None: {**real(name, space), "plugins": "demo_preset_plugin"})
    with pytest.raises(HarnessError, match=r"preset 'smoke': plugins='demo_preset_plugin' is not a list of module names"):
        plan(BenchRequest(strategy="params", preset="smoke", runs_dir=tmp_path / "runs", device="cpu"))


def test_a_run_made_with_a_plugin_is_not_resumed_without_it(tmp_path):
    from harness.runs.identity import differences

    recorded = {"strategy": "ws", "plugins": ["my_pkg.mod"]}
    assert differences(recorded, {"strategy": "ws"}) == ["plug-ins (run ['my_pkg.mod'], this command [])"]
    assert differences({"strategy": "ws"}, {"strategy": "ws"}) == []  # runs without plug-ins keep their identity
