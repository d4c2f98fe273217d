"""Make the training / validation split of the GAN runs as folders of symbolic links.

    python benchmarks/make_gan_split.py --data ../shared/data/train ../shared/data/benchmark/Set5 --out data/gan_split

The GAN phase is steered by validation LPIPS, so its validation images must be held out of
training and must not be Set14 or BSD100 (the reported test sets). Held out here: the last
4 DIV2K photos and the last 6 BSDS200 photos by sorted name, plus Set5 (the usual
validation set of SR papers). Everything else of T91, BSDS200 and DIV2K_valid_partial trains.
Links, not copies: the data sets stay where they are; rerunning replaces the folders.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HOLDOUT = {"DIV2K_valid_partial": 4, "BSDS200": 6}
TRAIN_SETS = ("T91", "BSDS200", "DIV2K_valid_partial")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs=2, type=Path, required=True, metavar=("TRAIN_ROOT", "SET5"),
                   help="the folder holding T91/BSDS200/DIV2K_valid_partial, and the Set5 folder")
    p.add_argument("--out", type=Path, required=True, help="gets train/<set>/ and val/ folders of links")
    args = p.parse_args()
    train_root, set5 = (d.resolve() for d in args.data)
    for sub in ("train", "val"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
    (args.out / "val").mkdir(parents=True)
    for name in TRAIN_SETS:
        files = sorted(f for f in (train_root / name).iterdir() if f.is_file())
        keep = len(files) - HOLDOUT.get(name, 0)
        (args.out / "train" / name).mkdir(parents=True)
        for f in files[:keep]:
            (args.out / "train" / name / f.name).symlink_to(f)
        for f in files[keep:]:
            (args.out / "val" / f"{name}_{f.name}").symlink_to(f)
    for f in sorted(set5.iterdir()):
        (args.out / "val" / f"Set5_{f.name}").symlink_to(f)
    print(f"{args.out}/train: {', '.join(TRAIN_SETS)}; {args.out}/val: "
          f"{len(list((args.out / 'val').iterdir()))} images")


if __name__ == "__main__":
    main()
