"""Official NAS-Bench-101 file (`nasbench_only108.tfrecord`) -> the harness's NB101 ground-truth table,
without TensorFlow.

TFRecord framing, per record: uint64 little-endian length, uint32 masked CRC32-C of those 8 bytes, the
payload, uint32 masked CRC32-C of the payload (mask: rotate right 15 bits, add 0xa282ead8). Every CRC is
checked. Payload (as the official `api.py` reads it): UTF-8 JSON `[module_hash, epochs, adjacency bits,
"op,op,...", base64(ModelMetrics protobuf)]`, one record per training run. ModelMetrics (proto2,
`model_metrics.proto`): 1 repeated EvaluationData, 2 int32 trainable_parameters, 3 double total_time;
EvaluationData: 1 current_epoch, 2 training_time, 3 train_accuracy, 4 validation_accuracy, 5
test_accuracy (doubles), 6 checkpoint_path. The last evaluation (epoch 108) of each run is used; the table
holds each cell once with the mean over its runs (3 in the official file), accuracies in %.

    python -m harness.spaces.nb101.tfrecord nasbench_only108.tfrecord $HARNESS_DATA/nb101/nb101_full.csv
"""
from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from harness.errors import HarnessError
from harness.runs.fileio import atomic_write

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        out.append(c)
    return out


_TABLE = _table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(stream: BinaryIO, name: str = "tfrecord", verify: bool = True) -> Iterator[bytes]:
    number = 0
    while True:
        head = stream.read(12)
        if not head:
            return
        if len(head) < 12:
            raise HarnessError(f"{name}: record {number} is truncated in its length header")
        length, head_crc = struct.unpack("<QI", head)
        if verify and masked_crc(head[:8]) != head_crc:
            raise HarnessError(f"{name}: record {number} has a bad length CRC (not a TFRecord file, or corrupt)")
        payload = stream.read(length)
        tail = stream.read(4)
        if len(payload) < length or len(tail) < 4:
            raise HarnessError(f"{name}: record {number} is truncated ({len(payload)} of {length} bytes)")
        if verify and masked_crc(payload) != struct.unpack("<I", tail)[0]:
            raise HarnessError(f"{name}: record {number} has a bad payload CRC (corrupt file)")
        yield payload
        number += 1


def write_record(stream: BinaryIO, payload: bytes) -> None:
    head = struct.pack("<Q", len(payload))
    stream.write(head + struct.pack("<I", masked_crc(head)) + payload + struct.pack("<I", masked_crc(payload)))


# ---- protobuf wire format ---------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise HarnessError("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def parse_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of every field: varints as int, fixed64/32 as raw bytes,
    length-delimited as bytes."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise HarnessError(f"protobuf: unsupported wire type {wire} (field {field})")
        if pos > len(buf):
            raise HarnessError(f"protobuf: field {field} runs past the end of the message")
        out.append((field, wire, value))
    return out


def _double(raw) -> float:
    return struct.unpack("<d", raw)[0]


def parse_model_metrics(buf: bytes) -> dict:
    evaluations, params = [], None
    for field, wire, value in parse_fields(buf):
        if field == 1 and wire == 2:
            ev = {}
            for f, w, v in parse_fields(value):
                if w == 1 and 1 <= f <= 5:
                    ev[("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")[f - 1]] = _double(v)
            evaluations.append(ev)
        elif field == 2 and wire == 0:
            params = value if value < 2**31 else value - 2**64
    return {"evaluation_data": evaluations, "trainable_parameters": params}


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_model_metrics(evaluations: list[dict], trainable_parameters: int, total_time: float = 0.0) -> bytes:
    """ModelMetrics in the official wire format (what the benchmark's generator serialises); for tests."""
    names = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
    out = bytearray()
    for ev in evaluations:
        inner = b"".join(bytes([(i + 1) << 3 | 1]) + struct.pack("<d", ev[n]) for i, n in enumerate(names) if n in ev)
        out += bytes([1 << 3 | 2]) + _varint_bytes(len(inner)) + inner
    out += bytes([2 << 3 | 0]) + _varint_bytes(trainable_parameters)
    out += bytes([3 << 3 | 1]) + struct.pack("<d", total_time)
    return bytes(out)


# ---- conversion -------------------------------------------------------------------------------------------


def convert(tfrecord: Path, epochs: int = 108, verify: bool = True):
    """The ground-truth table (pandas DataFrame) of every cell in `tfrecord` at `epochs`."""
    from harness.spaces.nb101.cell import Cell
    from harness.spaces.nb101.groundtruth import deduplicate

    cells, val, test, params, mismatched = [], [], [], [], 0
    with open(tfrecord, "rb") as stream:
        for number, payload in enumerate(read_records(stream, str(tfrecord), verify)):
            try:
                module_hash, record_epochs, bits, ops, metrics = json.loads(payload.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise HarnessError(f"{tfrecord}: record {number} is not a NAS-Bench-101 JSON row ({exc})") from None
            if int(record_epochs) != epochs:
                continue
            labels = ops.split(",")
            cell = Cell.make(np.array([int(b) for b in bits]).reshape(len(labels), len(labels)), labels, f"record {number}")
            mismatched += cell.hash != module_hash
            parsed = parse_model_metrics(base64.b64decode(metrics))
            final = parsed["evaluation_data"][-1]
            cells.append(cell)
            val.append(100.0 * final["validation_accuracy"])
            test.append(100.0 * final["test_accuracy"])
            params.append(parsed["trainable_parameters"])
    if not cells:
        raise HarnessError(f"{tfrecord}: no record at {epochs} epochs")
    if mismatched:
        raise HarnessError(f"{tfrecord}: {mismatched} records' module hashes differ from the official hash of their cell")
    return deduplicate(cells, {"nb101_val": np.array(val), "nb101_test": np.array(test)}, params=params)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="NAS-Bench-101 tfrecord -> harness ground-truth CSV (no TensorFlow)")
    parser.add_argument("tfrecord", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=108)
    parser.add_argument("--no-verify", action="store_true", help="skip CRC checks (pure-Python CRC-32C is the slow part)")
    args = parser.parse_args(argv)
    try:
        if not args.tfrecord.is_file():
            raise HarnessError(f"tfrecord file not found: {args.tfrecord}")
        table = convert(args.tfrecord, args.epochs, not args.no_verify)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, lambda tmp: table.to_csv(tmp, index=False, float_format="%.10g"))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(table)} cells, {int(table['runs'].sum())} runs -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
