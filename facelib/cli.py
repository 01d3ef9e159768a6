"""The ``facelib`` command.

Each subcommand lives in the module that does the work: the module exposes
``add_cli(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit status. This file only maps command names to those modules.

Only the module of the command being run is imported, so that ``facelib book`` does not pay
for torch, OpenCV or onnxruntime; ``facelib --help`` imports none of them.

A bad argument or input file raises an :class:`~facelib.errors.InputError` (the errors a user
can cause and fix derive from it: a checkpoint that cannot be read, an initialisation file that
does not fit, a malformed ``--set`` ...); :func:`main` prints its message as one line, ``facelib COMMAND: error:
...``, and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

from facelib.errors import InputError

__all__ = ["COMMANDS", "InputError", "ArgumentError", "key_values", "build_parser", "main"]

# command -> (module defining ``add_cli``, one-line help shown by ``facelib --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "book": ("facelib.book", "execute the notebooks with a profile and build the HTML book"),
    "preprocess": ("facelib.faces.preprocess", "detect, crop and store faces into HDF5 shards (supplement 1.1)"),
    "flickr": ("facelib.flickr.commands", "crawl Flickr-Face and build the dataset (supplement 3)"),
    "stats": ("facelib.stats", "face-size distribution and counts of a manifest"),
    "data": ("facelib.data.cli", "curated sets, synthetic faces, low-data subsets"),
    "pretrain": ("facelib.swav.train", "SwAV pretraining (supplement 1.1)"),
    "finetune": ("facelib.tasks.cli", "fine-tune a backbone on a downstream task (supplement 1.2)"),
    "jobs": ("facelib.launch", "submitted runs, cluster profiles, dry runs, probes"),
    "pipeline": ("facelib.pipeline", "the whole chain as SLURM jobs: preprocess -> pretrain -> grids -> results page"),
}


class ArgumentError(InputError, ValueError):
    """A malformed command-line value (the message names the option)."""


def key_values(items: Sequence[str] | None, option: str,
               error: type[Exception] = ArgumentError) -> dict[str, Any]:
    """``KEY=VALUE`` command-line items (``--set``, ``--cluster-set``) -> dict, values read as YAML
    (``lr=1e-3`` is a float, ``crop=[1, 2]`` a list, ``partition=gpu`` a string).

    A malformed item raises ``error`` naming ``option`` and the item.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise error(f"{option} expects KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, that command's module adds its full sub-parser."""
    parser = argparse.ArgumentParser(
        prog="facelib",
        description="Companion to 'Pre-training strategies and datasets for facial representation learning'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        if name == command:
            before = set(sub.choices)
            importlib.import_module(module).add_cli(sub)
            if name not in set(sub.choices) - before:
                raise RuntimeError(f"{module}.add_cli did not add the {name!r} command")
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        print(f"facelib {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
