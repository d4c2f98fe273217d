"""Make the training / validation split of the GAN runs as folders of symbolic links.

    python benchmarks/make_gan_split.py --data ../shared/data/train ../shared/data/benchmark/Set5 --out data/gan_split
    python benchmarks/make_gan_split.py --holdout structure --data ... --out data/gan_split_structure

The GAN phase is steered by validation LPIPS, so its validation images must be held out of
training and must not be Set14 or BSD100 (the reported test sets). Held out by `--holdout
classic` (the split of the runs up to srgan_x4's 24,200 iterations): the last 4 DIV2K photos and
the last 6 BSDS200 photos by sorted name, plus Set5 (the usual validation set of SR papers).
`structure` holds out 12 more photos, weighted towards what srgan_x4 renders worst: man-made
straight edges (buildings, windows, railings, text, brick) and fine natural texture (grass,
fur). They were picked by eye among the 25 photos of the two folders with the most pixels on
strong straight edges (structure-tensor coherence > 0.9) and the 3 with the most strong
incoherent texture, and their file names go to val/ with a `structure_` prefix: the runs before
the split trained on them, so they are scored apart from the 10 never-seen photos.
Everything else of T91, BSDS200 and DIV2K_valid_partial trains. Links, not copies: the data sets
stay where they are; rerunning replaces the folders.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HOLDOUT = {"DIV2K_valid_partial": 4, "BSDS200": 6}
TRAIN_SETS = ("T91", "BSDS200", "DIV2K_valid_partial")
STRUCTURE = {
    "DIV2K_valid_partial": {"im_24.webp", "im_46.webp"},  # a ship's wheel and railings; skyscrapers
    "BSDS200": {
        "372047.png", "65019.png", "78019.png", "61086.png", "56028.png", "118035.png",  # buildings, text,
        "157036.png",                                              # ships, chalets, brick, a church; bottles
        "8143.png", "26031.png", "365073.png",                     # grass, fur, foliage
    },
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs=2, type=Path, required=True, metavar=("TRAIN_ROOT", "SET5"),
                   help="the folder holding T91/BSDS200/DIV2K_valid_partial, and the Set5 folder")
    p.add_argument("--out", type=Path, required=True, help="gets train/<set>/ and val/ folders of links")
    p.add_argument("--holdout", choices=("classic", "structure"), default="classic",
                   help="classic: 10 photos + Set5; structure: 12 more of straight edges and fine texture")
    args = p.parse_args()
    train_root, set5 = (d.resolve() for d in args.data)
    for sub in ("train", "val"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
    (args.out / "val").mkdir(parents=True)
    for name in TRAIN_SETS:
        files = sorted(f for f in (train_root / name).iterdir() if f.is_file())
        keep = len(files) - HOLDOUT.get(name, 0)
        (args.out / "train" / name).mkdir(parents=True)
        structure = STRUCTURE.get(name, set()) if args.holdout == "structure" else set()
        for f in files[:keep]:
            if f.name in structure:
                (args.out / "val" / f"structure_{name}_{f.name}").symlink_to(f)
            else:
                (args.out / "train" / name / f.name).symlink_to(f)
        for f in files[keep:]:
            (args.out / "val" / f"{name}_{f.name}").symlink_to(f)
    for f in sorted(set5.iterdir()):
        (args.out / "val" / f"Set5_{f.name}").symlink_to(f)
    print(f"{args.out}/train: {', '.join(TRAIN_SETS)}; {args.out}/val: "
          f"{len(list((args.out / 'val').iterdir()))} images")


if __name__ == "__main__":
    main()
