"""benchmarks/peer_speed.py: the harness supernet and xautodl's RSPS supernet, on the same weights, compute the
same logits for the same paths (a wrong weight mapping or a different op would show), and the script ends with
the ratio line."""
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("peer_speed", REPO / "benchmarks" / "peer_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def peer():
    module = _module()
    try:
        module.import_xautodl()
    except module.HarnessError as exc:  # no package index reachable and no wheel in .cache/peer
        pytest.skip(str(exc))
    return module


@pytest.mark.smoke
def test_same_logits_then_ratio_line(peer, env_data, capsys):
    results = peer.main(["--shape", "smoke"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "same logits" in lines[0] and results["smoke"]["equivalence"]["max_abs_diff"] <= 1e-4
    assert results["smoke"]["estimate_max_accuracy_diff"] == 0.0  # batched and one-at-a-time agree on every arch
    assert re.fullmatch(r"harness/xautodl: step \d+\.\d\dx, estimation \d+\.\d\dx", lines[-1])


def test_a_wrong_weight_mapping_is_caught(peer, env_data):
    import torch

    pair = peer.Pair("smoke", torch.device("cpu"))
    assert pair.equivalence()["verdict"] == "same logits"
    with torch.no_grad():  # perturb one conv of xautodl's first cell after the copy: the check must see it
        original = peer.copy_weights
        peer.copy_weights = lambda ours, theirs: (original(ours, theirs), theirs.cells[0].edges["1<-0"][3].op[1].weight.add_(0.5))
        try:
            assert pair.equivalence()["verdict"] == "DIFFERENT"
        finally:
            peer.copy_weights = original
