import pytest

from harness.config import parse_override, preset_names, resolve
from harness.errors import HarnessError


def test_presets_exist_and_resolve():
    assert {"smoke", "mini"} <= set(preset_names())
    for name in preset_names():
        cfg = resolve(name)
        assert cfg.preset == name and cfg.train.lr > 0


def test_overrides_parse_toml_values_and_bare_words():
    assert parse_override("train.epochs=3") == (["train", "epochs"], 3)
    assert parse_override("train.lr=1e-3") == (["train", "lr"], 0.001)
    assert parse_override("shape.bn_mode=running") == (["shape", "bn_mode"], "running")
    assert parse_override("strategy.x.flag=true") == (["strategy", "x", "flag"], True)
    cfg = resolve("smoke", ["train.epochs=3", "shape.bn_mode=running", "strategy.ws.extra=1"])
    assert cfg.train.epochs == 3 and cfg.shape.bn_mode == "running" and cfg.strategy["ws"] == {"extra": 1}


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.epochs", "not of the form section.key=value"),
        ("trian.epochs=3", "unknown config section 'trian'"),
        ("train.epochs='3'", "train.epochs='3' has type str; expected int"),
        ("data.resolution=24", "data.resolution=24 is not supported; accepted: 8, 16, 32"),
        ("data.eval_images=5000", "exceeds data.holdout_images"),
        ("eval.num_archs=1", "eval.num_archs=1 must be 0 (all) or at least 2"),
        ("train.grad_clip=-1", "train.grad_clip=-1 must be >= 0"),
        ("eval.estimate_by=auc", "eval.estimate_by"),
    ],
)
def test_bad_overrides_name_the_value(override, fragment):
    with pytest.raises(HarnessError) as err:
        resolve("smoke", [override])
    assert fragment in str(err.value) and "\n" not in str(err.value)
