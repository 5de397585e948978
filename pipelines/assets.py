"""Build the embedded default's assets.

    handdiff assets tiny-zoo --out DIR [--force]   tiny real models (diffusers, transformers, SAM, Inception)
    handdiff assets sample-data --out DIR          sample datasets in the four native layouts + manifest.json

DIR is a local path or an s3:// prefix. The zoo is cached: it is rebuilt only
when its code or the model libraries change (or with --force).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from handdiff.assets.sample_data import build_sample_data
from handdiff.assets.tiny_zoo import build_tiny_zoo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="handdiff assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    zoo = sub.add_parser("tiny-zoo", help="build the tiny model zoo")
    zoo.add_argument("--out", required=True, help="output folder (local or s3://)")
    zoo.add_argument("--force", action="store_true", help="rebuild even if an up-to-date zoo is there")
    data = sub.add_parser("sample-data", help="write the sample datasets")
    data.add_argument("--out", required=True, help="output folder (local or s3://)")
    args = parser.parse_args(argv)

    if args.what == "tiny-zoo":
        manifest = build_tiny_zoo(args.out, force=args.force)
        how = "up to date, reused" if manifest["cached"] else f"built in {manifest['build_seconds']:.1f} s"
        print(f"tiny zoo at {args.out}: {how}, {manifest['bytes'] / 2**20:.1f} MiB")
        for name, path in manifest["models"].items():
            print(f"  {name:<11} {path}")
    else:
        manifest = build_sample_data(args.out)
        print(f"sample data at {args.out}:")
        for name, info in manifest["datasets"].items():
            print(f"  {name:<13} {info['files']:>4} files  ({info['root']}/)")
        print(f"  {len(manifest['bad_entries'])} deliberate bad entries, listed in {args.out}/manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
