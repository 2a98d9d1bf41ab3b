"""Write a pose-based split.json for the COIL-100 benchmark data (coil100_shapes20).

Neighbouring turntable poses (5 degrees apart) are near-duplicates, so a random split would put
almost every test image's twin in the training set. Alternate views instead: angle = 0 mod 10 degrees
trains, angle = 5 mod 10 tests; no test pose is closer than 5 degrees to a training pose.

    python benchmarks/coil100_split.py ../shared/datasets/coil100_shapes20 coil100_split.json
    python -m gan_studio train --data ../shared/datasets/coil100_shapes20 --split coil100_split.json ...

The images are research-only (see the dataset's README): point at them, never copy them into the repo.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_studio.data import DatasetError, Split, save_split, scan_image_folder  # noqa: E402

POSE = re.compile(r"__(\d+)$")  # file stem objN__ANGLE


def pose_split(data_dir: str | Path, *, progress: bool = False) -> Split:
    """Train on views at angle % 10 == 0, test on views at angle % 10 == 5."""
    records, _ = scan_image_folder(data_dir, progress=progress)
    train, test = [], []
    for record in records:
        match = POSE.search(PurePosixPath(record.path).stem)
        angle = int(match.group(1)) if match else None
        if angle is None or angle % 5:
            raise DatasetError(
                f"'{Path(data_dir) / record.path}' is not named objN__ANGLE.png with ANGLE a multiple of 5 degrees. "
                "This script only splits the COIL-100 turntable images; remove other files from the folder."
            )
        (train if angle % 10 == 0 else test).append(record.path)
    return Split(train=sorted(train), test=sorted(test), seed=0, test_fraction=0.5, group_pattern=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="coil100_shapes20 folder (one objN/ folder per object)")
    parser.add_argument("out", type=Path, help="split.json to write")
    args = parser.parse_args(argv)
    try:
        split = pose_split(args.data_dir, progress=True)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    save_split(split, args.out)
    print(f"wrote {args.out}: {len(split.train)} train views (angle % 10 == 0), {len(split.test)} test views")
    return 0


if __name__ == "__main__":
    sys.exit(main())
