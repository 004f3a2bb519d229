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


def test_types_come_from_annotations_so_optional_ints_are_checked_too():
    assert resolve("smoke", ["train.lr=1"]).train.lr == 1  # an int where a float is expected is fine
    assert resolve("smoke", ["data.train_images=200"]).data.train_images == 200
    for override, fragment in [
        ("train.lr=true", "train.lr=True has type bool; expected float"),
        ("data.train_images=true", "data.train_images=True has type bool; expected int"),
        ("data.train_images=1.5", "data.train_images=1.5 has type float; expected int"),
        ("train.epochs={a=1}", "train.epochs is a single value, not a table"),
        ("eval.chunk_archs=0", "eval.chunk_archs=0 must be >= 1"),
        ("compute.threads=-1", "compute.threads=-1 must be >= 0"),
    ]:
        with pytest.raises(HarnessError) as err:
            resolve("smoke", [override])
        assert fragment in str(err.value), str(err.value)


def test_strategy_options_get_the_same_type_checks():
    from dataclasses import dataclass

    from harness.config import build_options, check_strategy_overrides

    @dataclass(frozen=True)
    class Options:
        width: int = 4
        rate: float = 0.5

    assert build_options(Options, {"rate": 1}, "x").rate == 1
    with pytest.raises(HarnessError, match=r"strategy.x.width=True has type bool; expected int"):
        build_options(Options, {"width": True}, "x")
    with pytest.raises(HarnessError, match=r"strategy.x.rate=nan must be a finite number"):
        build_options(Options, {"rate": float("nan")}, "x")
    check_strategy_overrides("ws", ["strategy.ws.a=1", "train.lr=0.1"])
    with pytest.raises(HarnessError, match="sets options of strategy 'dinas', but this run's strategy is 'ws'"):
        check_strategy_overrides("ws", ["strategy.dinas.variant=grad"])
