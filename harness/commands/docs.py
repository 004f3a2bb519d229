"""`docs`: rewrite the generated blocks of README.md and docs/*.md from the committed result summaries."""
from __future__ import annotations

from pathlib import Path

from harness.registry import COMMANDS


@COMMANDS.register("docs")
class Docs:
    help = "fill the <!-- generated:NAME --> blocks of README.md and docs/*.md from results/ (--check: only report)"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--root", type=Path, default=Path("."), help="the repository root (default: here)")
        parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a document is out of date")

    @staticmethod
    def run(args) -> int:
        from harness.reports.docs import documents, generate

        stale = generate(args.root, check=args.check)
        for path in stale:
            print(f"{'out of date' if args.check else 'updated'}: {path}")
        if not stale:
            print(f"{len(documents(args.root))} documents up to date")
        return 1 if stale and args.check else 0
