"""`truth build`: train a preset's architectures standalone on its own task -> results/truth/<space>-<preset>.csv."""
from __future__ import annotations

from pathlib import Path

from harness.commands.sweep import parse_seeds
from harness.registry import COMMANDS
from harness.truth.build import TRUTH_DIR


@COMMANDS.register("truth")
class Truth:
    help = "build a proxy-scale truth: each architecture trained standalone on exactly a preset's task (resumable, on Ray)"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("action", choices=("build",), help="build (or finish) the table")
        parser.add_argument("--preset", required=True, help="the task to train on (smoke | mini | ...)")
        parser.add_argument("--space", default="nb201")
        parser.add_argument("--archs", type=int, default=None,
                            help="the first N of the preset's scored set in the table's fixed order (default: all of it)")
        parser.add_argument("--seeds", default="0", help="comma-separated training seeds per architecture (default 0)")
        parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's; another value names another table)")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override a preset value (names another table; repeatable)")
        parser.add_argument("--out-dir", type=Path, default=TRUTH_DIR, help=f"where tables go (default {TRUTH_DIR})")
        parser.add_argument("--executor", default="ray", help="ray (default; --address for a cluster) | local (this process)")
        parser.add_argument("--address", default=None, help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
        parser.add_argument("--chunk", type=int, default=4, help="architecture x seed pairs per task (default 4)")
        parser.add_argument("--data-dir", default=None, help="data directory (default $HARNESS_DATA, else ./data)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    @staticmethod
    def run(args) -> int:
        from harness.truth.build import TruthRequest, build

        req = TruthRequest(
            preset=args.preset, space=args.space, archs=args.archs, seeds=tuple(parse_seeds(args.seeds)), epochs=args.epochs,
            overrides=tuple(args.overrides), out_dir=args.out_dir, executor=args.executor, address=args.address,
            chunk=args.chunk, data_dir=args.data_dir, progress=not args.no_progress,
        )
        out = build(req)
        print(f"{out['table']}: {out['archs']} architectures x {len(req.seeds)} seed(s) requested; trained {out['trained']} "
              f"of {out['pairs']} pairs now ({out['seconds']:.1f} s), the rest were already done")
        return 0
