"""The ``facelib`` command.

Each subcommand lives in the module that does the work: the module exposes
``add_cli(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit status. This file only lists those modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Modules that contribute a subcommand (each defines ``add_cli``).
COMMAND_MODULES: tuple[str, ...] = (
    "facelib.book",
    "facelib.launch",
    "facelib.faces.preprocess",
    "facelib.flickr.commands",
    "facelib.stats",
    "facelib.swav.train",
    "facelib.data.cli",
    "facelib.tasks.finetune",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facelib",
        description="Companion to 'Pre-training strategies and datasets for facial representation learning'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
