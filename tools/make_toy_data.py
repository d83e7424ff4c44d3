"""Generate the densekd toy shapes dataset (detection + segmentation) from the command line.

Example::

    python tools/make_toy_data.py --out data/toy --seed 0 --num-train 512 --num-val 128
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import densekd  # noqa: F401
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from densekd.datasets.toy_data import (  # noqa: E402
    DEFAULT_PARAMS,
    ensure_toy_dataset,
    generate_toy_dataset,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/toy', help='output directory')
    parser.add_argument('--seed', type=int, default=DEFAULT_PARAMS['seed'])
    parser.add_argument('--num-train', type=int, default=DEFAULT_PARAMS['num_train'])
    parser.add_argument('--num-val', type=int, default=DEFAULT_PARAMS['num_val'])
    parser.add_argument('--img-size', type=int, default=DEFAULT_PARAMS['img_size'])
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if the existing data matches the parameters')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate (or verify) the toy dataset and print its counts and the time taken."""
    args = parse_args(argv)
    params = dict(seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                  img_size=args.img_size)
    meta_file = Path(args.out) / 'meta.json'
    before = meta_file.stat().st_mtime_ns if meta_file.exists() else None
    start = time.perf_counter()
    if args.force:
        meta = generate_toy_dataset(args.out, **params)
    else:
        meta = ensure_toy_dataset(args.out, **params)
    elapsed = time.perf_counter() - start
    action = 'up to date' if meta_file.stat().st_mtime_ns == before else 'generated'
    for split, counts in meta['splits'].items():
        print(f'{split}: {counts["num_images"]} images, {counts["num_annotations"]} instances, '
              f'{counts["num_empty"]} empty images')
    print(f'toy dataset v{meta["version"]} {meta["params"]} at {args.out}: {action} '
          f'in {elapsed:.2f} s')


if __name__ == '__main__':
    main()
