"""``facelib data``: curated manifests, synthetic sets, native-format demo roots, fixed subsets.

::

    facelib data curate large_scale_face --root vggface2=/d/vggface2 --root w300lp=/d/300W_LP \\
        --root imdbface=/d/imdb --root affectnet=/d/affectnet --root widerface=/d/wider --out lsf.parquet
    facelib data synth OUT --n 10000 --seed 0 --size 128
    facelib data native OUT --n 200            # synthetic faces in each dataset's own format
    facelib data subsets MANIFEST OUT.json [--identity-column identity]
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_cli"]


def _roots(pairs: list[str]) -> dict[str, Path]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise SystemExit(f"--root expects NAME=PATH, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = Path(v)
    return out


def _curate(args: argparse.Namespace) -> int:
    from facelib.data import curated
    from facelib.data.record import Problems

    problems = Problems(collect=True)
    df = curated.build(args.name, _roots(args.root), out=args.out, size=args.size, seed=args.seed,
                       problems=problems, progress=True)
    print(f"{curated.TITLES[args.name]}: {len(df)} faces -> {args.out}")
    print(df["dataset"].value_counts().to_string())
    if len(problems):
        rejects = Path(args.out).with_suffix(".rejects.parquet")
        problems.to_frame().to_parquet(rejects)
        print(f"{len(problems)} problems (bad lines, missing images) listed in {rejects}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from facelib.data.synth_set import write_synth_set

    df = write_synth_set(args.out, args.n, args.seed, args.size, args.num_identities, args.shard_size,
                         args.encoding)
    print(f"{len(df)} synthetic faces in {args.out}")
    return 0


def _native(args: argparse.Namespace) -> int:
    from facelib.data import native

    roots = native.write_all(args.out, args.n, args.seed, args.size)
    for k, v in roots.items():
        print(f"{k:10s} {v}")
    return 0


def _subsets(args: argparse.Namespace) -> int:
    from facelib import storage
    from facelib.data import sampling

    df = storage.read_manifest(args.manifest)
    s = sampling.fixed_subsets(df, args.out, identity_column=args.identity_column)
    print(s.table(df, args.identity_column).to_string(index=False))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``facelib data`` and its subcommands."""
    p = subparsers.add_parser("data", help="curated sets, synthetic faces, low-data subsets")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    c = sub.add_parser("curate", help="build a curated pretraining manifest (supplement 2)")
    c.add_argument("name", choices=("full_vggface", "small_vggface", "large_scale_face"))
    c.add_argument("--root", action="append", default=[], metavar="NAME=PATH",
                   help="dataset root per reader (vggface2, w300lp, imdbface, affectnet, widerface)")
    c.add_argument("--out", required=True, type=Path, help="manifest to write (parquet)")
    c.add_argument("--size", type=int, default=None, help="Small VGG-Face: images to draw (default 1M)")
    c.add_argument("--seed", type=int, default=None, help="Small VGG-Face: seed (default from recipes)")
    c.set_defaults(func=_curate)

    s = sub.add_parser("synth", help="render a synthetic labelled set into HDF5 shards + manifest")
    s.add_argument("out", type=Path)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--num-identities", type=int, default=100)
    s.add_argument("--shard-size", type=int, default=1000)
    s.add_argument("--encoding", choices=("png", "jpeg"), default="png")
    s.set_defaults(func=_synth)

    n = sub.add_parser("native", help="write synthetic faces in each real dataset's native format")
    n.add_argument("out", type=Path)
    n.add_argument("--n", type=int, default=100, help="faces per dataset")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--size", type=int, default=128)
    n.set_defaults(func=_native)

    f = sub.add_parser("subsets", help="draw (once) the fixed low-data subsets of a manifest (supplement 1.3)")
    f.add_argument("manifest", type=Path)
    f.add_argument("out", type=Path, help="subsets file (JSON); reused if it exists")
    f.add_argument("--identity-column", default=None, help="face recognition: keep 1/4 of identities at 2%%")
    f.set_defaults(func=_subsets)
