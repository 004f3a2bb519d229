"""NB101 ground truth: the sample deduplicated by hash, and the converter from the official tfrecord."""
import base64
import json
import struct

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.spaces.nb101 import tfrecord
from harness.spaces.nb101.cell import Cell
from harness.spaces.nb101.groundtruth import load_ground_truth


def test_crc32c_known_values():
    # RFC 3720 (iSCSI) test vectors for CRC-32C.
    assert tfrecord.crc32c(b"123456789") == 0xE3069283
    assert tfrecord.crc32c(bytes(32)) == 0x8A9136AA
    assert tfrecord.crc32c(bytes([0xFF] * 32)) == 0x62A8AB43


def _row(cell: Cell, run: int, val: float, test: float, params: int) -> bytes:
    evaluations = [
        {"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1, "validation_accuracy": 0.1, "test_accuracy": 0.1},
        {"current_epoch": 54.0, "training_time": 1.0, "train_accuracy": 0.5, "validation_accuracy": 0.5, "test_accuracy": 0.5},
        {"current_epoch": 108.0, "training_time": 2.0 + run, "train_accuracy": 1.0, "validation_accuracy": val, "test_accuracy": test},
    ]
    metrics = base64.b64encode(tfrecord.encode_model_metrics(evaluations, params, 123.0)).decode()
    return json.dumps([cell.hash, 108, cell.bits, ",".join(cell.ops), metrics]).encode()


def _write(path, rows):
    with open(path, "wb") as f:
        for row in rows:
            tfrecord.write_record(f, row)


def test_converter_on_an_official_format_file(tmp_path):
    a = Cell.parse("0100|input,output")
    b = Cell.parse("010001000|input,conv3x3-bn-relu,output")
    rows = [_row(a, r, v, t, 1000) for r, (v, t) in enumerate([(0.80, 0.79), (0.82, 0.81), (0.84, 0.83)])]
    rows += [_row(b, r, v, t, 2000) for r, (v, t) in enumerate([(0.90, 0.89), (0.92, 0.91), (0.91, 0.90)])]
    rows.insert(2, json.dumps(["x", 36, a.bits, ",".join(a.ops), ""]).encode())  # another budget: ignored
    path = tmp_path / "mini.tfrecord"
    _write(path, rows)
    # The framing is TFRecord's: 8-byte length, masked CRC of it, payload, masked CRC of the payload.
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert length == len(rows[0]) and struct.unpack("<I", raw[8:12])[0] == tfrecord.masked_crc(raw[:8])
    table = tfrecord.convert(path)
    assert len(table) == 2 and list(table["runs"]) == [3, 3]
    by_arch = table.set_index("arch")
    assert by_arch.loc[str(a), "nb101_val"] == pytest.approx(82.0)
    assert by_arch.loc[str(b), "nb101_test"] == pytest.approx(90.0)
    assert by_arch.loc[str(b), "params"] == 2000
    out = tmp_path / "nb101" / "nb101_full.csv"
    assert tfrecord.main([str(path), str(out)]) == 0
    gt = load_ground_truth(root=tmp_path)  # the converted table is preferred over the sample
    assert gt.path == out and gt.columns == ("nb101_val", "nb101_test")
    assert gt.values([b], "nb101_val")[0] == pytest.approx(91.0)


def test_converter_rejects_corruption(tmp_path):
    path = tmp_path / "bad.tfrecord"
    _write(path, [_row(Cell.parse("0100|input,output"), 0, 0.8, 0.8, 1)])
    data = bytearray(path.read_bytes())
    data[20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="bad payload CRC"):
        tfrecord.convert(path)
    path.write_bytes(bytes(data[:30]))
    with pytest.raises(HarnessError, match="truncated"):
        tfrecord.convert(path)


def test_converter_checks_the_recorded_hash(tmp_path):
    row = json.loads(_row(Cell.parse("0100|input,output"), 0, 0.8, 0.8, 1))
    row[0] = "0" * 32
    path = tmp_path / "x.tfrecord"
    _write(path, [json.dumps(row).encode()])
    with pytest.raises(HarnessError, match="differ from the official hash"):
        tfrecord.convert(path)


def test_sample_deduplicated_by_hash(data_dir):
    gt = load_ground_truth(root=data_dir)
    table = gt.table
    assert gt.columns == ("nb101_val",)
    assert int(table["runs"].sum()) == 500 and table["hash"].is_unique
    assert len(table) == 292  # 500 unpruned rows -> 292 isomorphism classes
    bare = gt.index_of(Cell.parse("0100|input,output"))
    assert table.loc[bare, "runs"] == 55 and 83.16 <= table.loc[bare, "nb101_val"] <= 83.58
    # Every row is its class's pruned representative, and arch_of / index_of are inverse.
    for i in range(0, len(table), 37):
        assert gt.index_of(gt.arch_of(i)) == i
    with pytest.raises(HarnessError, match="column"):
        gt.values([gt.arch_of(0)], "cifar10_test")


def test_sample_hashes_equal_the_benchmark_implementation(data_dir):
    import pandas as pd

    graph_util = pytest.importorskip("nasbench_pytorch.model.graph_util")
    from nasbench_pytorch.model.model_spec import ModelSpec

    from harness.spaces.nb101.cell import OPS

    raw = pd.read_csv(data_dir / "nb101" / "nb101_sample500.csv", dtype={"adjacency": str})
    for adjacency, ops in zip(raw["adjacency"], raw["ops"]):
        spec = ModelSpec(np.array([int(b) for b in adjacency]).reshape(7, 7), ops.split(","))  # the package's pruning
        labels = [-1] + [OPS.index(op) for op in spec.ops[1:-1]] + [-2]
        assert Cell.parse(f"{adjacency}|{ops}").hash == graph_util.hash_module(spec.matrix.numpy(), labels)
