"""``srzoo train --scale S --data FOLDER... -o model.onnx``: train a compact network
on HR images, export an ONNX file that cv2.dnn runs and its manifest entry.
Needs PyTorch: ``pip install 'srzoo[train]'``."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from srzoo.errors import SrzooError

EXAMPLE = """examples:
  srzoo train --scale 2 --data ~/photos -o mine_x2.onnx
  srzoo train --scale 4 --data T91 BSD68 --arch resblock --loss l1+ms-ssim --seed 1 -o x4.onnx
  srzoo train ... -o x4.onnx --resume          # continue after an interruption
  srzoo train --scale 3 --init x2.ckpt ...     # fine-tune from another scale's checkpoint

The checkpoint (written after every epoch) is OUTPUT with .ckpt appended unless
--checkpoint is given. Beside the checkpoint, NAME.onnx.toml receives the manifest
entry (use it with SRZOO_REGISTRY or srzoo.add_manifest) and NAME.onnx.log.json
the settings and per-epoch log.
"""


def _floats(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not vals or min(vals) <= 0 or max(vals) > 1:
        raise argparse.ArgumentTypeError(f"factors must be in (0, 1], got {text!r}")
    return vals


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise SrzooError("srzoo train needs PyTorch: pip install 'srzoo[train]' "
                         "(a CPU build is enough)") from None


#: (option, smallest value): checked before any data is read or any file written
_AT_LEAST = (("epochs", 1), ("steps", 1), ("batch", 1), ("patch", 16), ("val_count", 0),
             ("threads", 0))


def _check_numbers(args: argparse.Namespace) -> None:
    for name, low in _AT_LEAST:
        if getattr(args, name) < low:
            flag = "--" + name.replace("_", "-")
            raise SrzooError(f"{flag} must be >= {low}, got {getattr(args, name)}")
    if not math.isfinite(args.lr) or args.lr <= 0:
        raise SrzooError(f"--lr must be a positive number, got {args.lr:g}")


def run(args: argparse.Namespace) -> int:
    _need_torch()
    from srzoo.train import ARCHS, TrainConfig, export_onnx, manifest_entry, train

    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise SrzooError(f"{out}: the output must be an .onnx file")
    if args.arch not in ARCHS:
        raise SrzooError(f"unknown --arch {args.arch!r}; choose one of {', '.join(ARCHS)}")
    _check_numbers(args)
    cfg = TrainConfig(scale=args.scale, data=[str(d) for d in args.data], arch=args.arch,
                      loss=args.loss, epochs=args.epochs, steps_per_epoch=args.steps,
                      batch=args.batch, patch=args.patch, lr=args.lr, seed=args.seed,
                      val_count=args.val_count, downscales=args.downscales,
                      init=args.init, threads=args.threads)
    ck = Path(args.checkpoint) if args.checkpoint else out.with_name(out.name + ".ckpt")
    if ck.exists() and not args.resume:
        raise SrzooError(f"{ck}: a checkpoint exists; add --resume to continue it, or remove it")
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    res = train(cfg, checkpoint=ck, resume=args.resume, progress=not args.quiet, log=log)
    pre = ARCHS[cfg.arch].kind == "pre"
    info = export_onnx(res.model, out, pre_upsample=pre, scale=cfg.scale)
    name = args.name or out.stem.lower().replace(" ", "-")
    entry = manifest_entry(name, cfg.scale, info, arch=cfg.arch, pre_upsample=pre,
                           bundled=args.bundled, **({"license": args.license} if args.license else {}),
                           description=f"srzoo train --arch {cfg.arch} --loss {cfg.loss} "
                                       f"--seed {cfg.seed}")
    side = ck.with_name(out.name)
    side.with_name(side.name + ".toml").write_text(entry)
    side.with_name(side.name + ".log.json").write_text(json.dumps(
        {"config": asdict(cfg), "export": info, "history": res.history}, indent=1) + "\n")
    last = res.history[-1] if res.history else {}
    if not args.quiet:
        print(f"wrote {out} ({info['size']} bytes, sha256 {info['sha256'][:12]}…, cv2.dnn max |d| "
              f"{info['max_abs_diff']:.1e}); validation PSNR {last.get('val_psnr', float('nan')):.3f} dB; "
              f"manifest entry in {side}.toml; {time.perf_counter() - t0:.0f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a compact SR network and export it as ONNX",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", "-s", type=int, required=True, choices=(2, 3, 4, 5, 6, 8))
    p.add_argument("--data", nargs="+", required=True, metavar="FOLDER",
                   help="folders (or files) of high-resolution training images")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx")
    p.add_argument("--arch", default="espcn-res", help="architecture (default: %(default)s); "
                   "see srzoo.train.ARCHS")
    p.add_argument("--loss", default="l1", choices=("l1", "l2", "ms-ssim", "l1+ms-ssim"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=200, help="steps per epoch (default: %(default)s)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=32, help="LR patch side in pixels (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-count", type=int, default=4, help="images held out for validation")
    p.add_argument("--downscales", type=_floats, default=[1.0], metavar="F,F",
                   help="also train on each HR image shrunk by these factors (e.g. 1,0.8,0.6)")
    p.add_argument("--init", metavar="CKPT", help="start from this checkpoint's matching weights")
    p.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default: OUTPUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    p.add_argument("--name", help="model name in the manifest entry (default: OUTPUT's stem)")
    p.add_argument("--license", help="licence written into the manifest entry")
    p.add_argument("--bundled", action="store_true",
                   help="manifest entry for a file shipped inside the srzoo package")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or log lines")
    p.set_defaults(func=run)
