"""`download` and `convert-gt`: get the data a run needs."""
from __future__ import annotations

from pathlib import Path

from harness.data.download import ARCHIVES, install
from harness.data.paths import data_root
from harness.scoring.gt_convert import convert
from harness.scoring.groundtruth import GT_FILE
from harness.registry import COMMANDS


@COMMANDS.register("download")
class Download:
    help = "download and verify the official CIFAR archives into the data directory"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("dataset", choices=sorted(ARCHIVES))
        parser.add_argument("--data-dir", default=None, help="default $HARNESS_DATA, else ./data")
        parser.add_argument("--archive", type=Path, default=None, help="use an already downloaded archive instead")

    @staticmethod
    def run(args) -> int:
        folder = install(args.dataset, data_root(args.data_dir), archive=args.archive)
        print(f"{args.dataset} ready at {folder}")
        return 0


@COMMANDS.register("convert-gt")
class ConvertGroundTruth:
    help = "build nb201_accuracy.csv from the official NATS-Bench / NAS-Bench-201 file (needs their package)"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--benchmark", type=Path, required=True, help="NATS-tss-v1_0-3ffb9-simple (dir) or NAS-Bench-201-v1_1-096897.pth")
        parser.add_argument("--api", choices=("nats", "nb201"), default="nats")
        parser.add_argument("--hp", default="200", help="training schedule key (200 epochs is the benchmark's final accuracy)")
        parser.add_argument("--out", type=Path, default=None, help=f"default $HARNESS_DATA/{GT_FILE}")

    @staticmethod
    def run(args) -> int:
        out = args.out or data_root() / GT_FILE
        table = convert(args.benchmark, out, args.api, args.hp)
        print(f"wrote {len(table)} rows to {out}")
        return 0
