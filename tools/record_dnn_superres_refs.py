"""Record cv2.dnn_superres references for the OpenCV TensorFlow super-resolution models.

OpenCV 5.1 dropped the TensorFlow importer (cv2.dnn.readNetFromTensorflow), so
DnnSuperResImpl can no longer read the upstream ``.pb`` files and the tests
cannot compute upsample()'s output on the fly there. This script, run with an
OpenCV that still has the importer (4.x, 5.0), records upsample() of a small
crop of Set14/monarch.png (colour and grey) for each of the 12 (model, scale)
pairs as lossless PNGs, plus ``refs.json`` with the versions, the sha256 of
every input and output, and the command that made them.

    python tools/record_dnn_superres_refs.py [SHARED] [--out DIR]
    python tools/record_dnn_superres_refs.py [SHARED] --compare   # diff against committed refs

SHARED is the folder with models/opencv/*.pb and datasets/Set14/monarch.png
(default: $SRZOO_SHARED, else ../shared beside the repository, as in
tests/conftest.py). ``--compare`` writes nothing: it prints, per model, the
largest difference between this OpenCV's upsample() and the committed PNGs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "dnn_superres"

# (srzoo model name, upstream .pb stem, dnn_superres algorithm, scale)
MODELS = [
    ("espcn", "ESPCN", "espcn", 2), ("espcn", "ESPCN", "espcn", 3), ("espcn", "ESPCN", "espcn", 4),
    ("fsrcnn", "FSRCNN", "fsrcnn", 2), ("fsrcnn", "FSRCNN", "fsrcnn", 3),
    ("fsrcnn", "FSRCNN", "fsrcnn", 4),
    ("fsrcnn-small", "FSRCNN-small", "fsrcnn", 2), ("fsrcnn-small", "FSRCNN-small", "fsrcnn", 3),
    ("fsrcnn-small", "FSRCNN-small", "fsrcnn", 4),
    ("lapsrn", "LapSRN", "lapsrn", 2), ("lapsrn", "LapSRN", "lapsrn", 4),
    ("lapsrn", "LapSRN", "lapsrn", 8),
]
IMAGE = "datasets/Set14/monarch.png"
CROP = {"y0": 180, "y1": 220, "x0": 300, "x1": 352}  # monarch[180:220, 300:352]: 40x52
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 9]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_shared() -> Path:
    return Path(os.environ.get("SRZOO_SHARED", REPO.parent / "shared"))


def crops(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """The colour crop (BGR, as cv2.IMREAD_COLOR reads it) and its grey version."""
    img = cv2.imread(str(shared / IMAGE), cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"cannot read {shared / IMAGE}")
    colour = np.ascontiguousarray(img[CROP["y0"]:CROP["y1"], CROP["x0"]:CROP["x1"]])
    return colour, cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)


def upsampler(pb: Path, algo: str, scale: int) -> "cv2.dnn_superres.DnnSuperResImpl":
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(pb))
    sr.setModel(algo, scale)
    return sr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("shared", nargs="?", type=Path, default=None,
                   help="folder with models/opencv and datasets/Set14 (default: $SRZOO_SHARED "
                        "or ../shared beside the repository)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(REPO)}")
    p.add_argument("--compare", action="store_true",
                   help="write nothing; print the max difference to the PNGs already in --out")
    args = p.parse_args(argv)
    shared = (args.shared or default_shared()).resolve()
    if not hasattr(cv2.dnn, "readNetFromTensorflow"):
        sys.exit(f"OpenCV {cv2.__version__} has no TensorFlow importer: run this with OpenCV 4.x or 5.0")

    colour, grey = crops(shared)
    out: Path = args.out
    if not args.compare:
        out.mkdir(parents=True, exist_ok=True)
    models, outputs, worst = {}, {}, 0
    for name, stem, algo, scale in MODELS:
        pb = shared / "models" / "opencv" / f"{stem}_x{scale}.pb"
        sr = upsampler(pb, algo, scale)
        key = f"{name}_x{scale}"
        models[key] = {"model": name, "scale": scale, "algorithm": algo,
                       "pb": f"models/opencv/{pb.name}", "pb_sha256": sha256(pb.read_bytes())}
        diffs = []
        for suffix, img in (("", colour), ("_grey", grey)):
            res = sr.upsample(img)
            want = (img.shape[0] * scale, img.shape[1] * scale) + img.shape[2:]
            assert res.shape == want and res.dtype == np.uint8, (key, res.shape, res.dtype)
            fname = f"{key}{suffix}.png"
            if args.compare:
                ref = cv2.imread(str(out / fname), cv2.IMREAD_UNCHANGED)
                d = np.abs(res.astype(np.int64) - ref.astype(np.int64))
                diffs.append(f"{suffix or 'colour'} max {int(d.max())} "
                             f"({(d > 0).mean() * 100:.2f} % differ, {(d > 1).mean() * 100:.2f} % by >1)")
                worst = max(worst, int(d.max()))
                continue
            ok, buf = cv2.imencode(".png", res, PNG_PARAMS)
            assert ok, fname
            data = buf.tobytes()
            back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(back, res), f"{fname}: PNG round trip is not lossless"
            (out / fname).write_bytes(data)
            outputs[fname] = {"model": key, "input": "grey" if suffix else "colour",
                              "shape": list(res.shape), "sha256": sha256(data),
                              "pixels_sha256": sha256(res.tobytes())}
        if args.compare:
            print(f"{key:18s} " + "; ".join(diffs))
    if args.compare:
        print(f"OpenCV {cv2.__version__}: worst difference to {out} is {worst} level(s)")
        return 0

    try:
        script = str(Path(sys.argv[0]).resolve().relative_to(REPO))
    except ValueError:
        script = sys.argv[0]
    refs = {
        "about": "cv2.dnn_superres.DnnSuperResImpl upsample() of the original TensorFlow .pb "
                 "models, recorded by tools/record_dnn_superres_refs.py",
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        # the interpreter by name, not its path on the recording machine
        "command": shlex.join(["python", script, *sys.argv[1:]]),
        "environment": f"pip install opencv-contrib-python=={cv2.__version__}.* (a build with cv2.dnn.readNetFromTensorflow)",
        "image": IMAGE,
        "image_sha256": sha256((shared / IMAGE).read_bytes()),
        "crop": dict(CROP, note="img[y0:y1, x0:x1] of cv2.imread(image, cv2.IMREAD_COLOR)"),
        "input_sha256": {"colour": sha256(colour.tobytes()), "grey": sha256(grey.tobytes())},
        "input_shape": {"colour": list(colour.shape), "grey": list(grey.shape)},
        "grey": "cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)",
        "models": models,
        "outputs": outputs,
    }
    (out / "refs.json").write_text(json.dumps(refs, indent=1) + "\n")
    total = sum((out / f).stat().st_size for f in outputs) + (out / "refs.json").stat().st_size
    print(f"wrote {len(outputs)} PNGs and refs.json to {out} ({total / 1024:.0f} KiB) "
          f"with OpenCV {cv2.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
