"""``srzoo convert INPUT [-o OUT.onnx] [--arch A] [--scale S] [--manifest OUT.toml]``, ``srzoo inspect FILE``
and ``srzoo export NAME -s S -o FILE.onnx`` / ``srzoo export --all-opencv -o DIR``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))) \
            if all(isinstance(n, int) for n in v.values()) else json.dumps(v)
    if isinstance(v, list):
        return "; ".join(_fmt(x) if not isinstance(x, dict) else
                         f"{x.get('name')} {x.get('shape')}" for x in v)
    return str(v)


def cmd_convert(args: argparse.Namespace) -> int:
    if args.input.lower().startswith("omdb:"):  # a catalogue record: fetched, converted, copied out
        from srzoo.cli.catalog import cmd_convert_record

        return cmd_convert_record(args)
    from srzoo.convert.files import convert_file, write_manifest

    done = convert_file(args.input, args.output, arch=args.arch, scale=args.scale, value_range=args.range,
                        overwrite=args.overwrite)
    c = done.conversion
    print(f"format:       {done.format}")
    print(f"architecture: {c.info.get('arch')}")
    print(f"scale:        {c.info.get('scale')}")
    print(f"parameters:   {c.info.get('params')}")
    print(f"verification: max |diff| {c.probe_error:.3g} against {c.checked_against}")
    print(f"output:       {done.output} (sha256 {done.sha256})")
    if args.manifest:
        name = write_manifest(args.manifest, done, args.name)
        print(f"manifest:     {args.manifest}: entry {name} x{c.info.get('scale')} "
              f"(SRZOO_REGISTRY={args.manifest} srzoo upscale IMAGE -m {name} -s {c.info.get('scale')})")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from srzoo.convert.files import inspect_file

    facts = inspect_file(args.file, scale=args.scale, arch=args.arch)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
        return 0
    for k, v in facts.items():
        print(f"{k + ':':14}{_fmt(v)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """One line per written file; with --all-opencv one error line per model that
    failed (the others are still written) and exit 1 if any did."""
    import sys

    from srzoo.convert.export import export, opencv_families
    from srzoo.errors import SrzooError

    if args.all_opencv:
        if args.name or args.scale:
            raise SrzooError("--all-opencv exports every dnn_superres model: give no NAME or --scale")
        if not args.output:
            raise SrzooError("--all-opencv needs -o DIR (the folder to write the files into)")
        out = Path(args.output)
        if out.exists() and not out.is_dir():
            raise SrzooError(f"{out}: is not a folder; --all-opencv writes one file per model into -o DIR")
        out.mkdir(parents=True, exist_ok=True)
        todo = [(e.name, e.scale) for e in opencv_families()]
    elif not args.name:
        raise SrzooError("name a model to export (srzoo export espcn -s 4 -o espcn_x4.onnx) "
                         "or pass --all-opencv -o DIR")
    else:
        todo = [(args.name, args.scale)]
        out = Path(args.output) if args.output else None
    failed = 0
    for name, scale in todo:
        try:
            done = export(name, scale, out, force=args.force, quiet=True if args.quiet else None)
        except SrzooError as e:
            if not args.all_opencv:
                raise
            failed += 1
            print(f"srzoo: error: {name} x{scale}: {e}", file=sys.stderr, flush=True)
            continue
        how = f"setModel(\"{done.algorithm}\", {done.scale})" if done.algorithm else \
            f"outputs {', '.join(done.outputs)}"
        print(f"{done.path}  ({done.model} x{done.scale}, {done.source}; {how})", flush=True)
    if failed:
        print(f"srzoo: {failed} of {len(todo)} model(s) not exported", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="write the verified ONNX of a registry model (dnn_superres .pb "
                                      "models for OpenCV 5.1)",
                       description="Write the verified ONNX file of a registry model. For ESPCN, FSRCNN, "
                                   "LapSRN and EDSR it is a drop-in for cv2.dnn_superres on OpenCV 5.1, "
                                   "which no longer reads their .pb files: readModel(FILE); "
                                   "setModel(ALGO, SCALE); upsample(img).")
    e.add_argument("name", nargs="?", metavar="NAME")
    e.add_argument("-s", "--scale", type=int, default=None, help="scale (default: the lowest the model has)")
    e.add_argument("-o", "--output", metavar="FILE.onnx|DIR",
                   help="output file or folder (default: the published name with .onnx, e.g. ESPCN_x4.onnx)")
    e.add_argument("--all-opencv", action="store_true",
                   help="every dnn_superres model and scale into -o DIR")
    e.add_argument("--force", action="store_true", help="replace an existing output file")
    e.add_argument("-q", "--quiet", action="store_true", help="no download progress bar")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="convert a .pth / .h5 / ncnn model file to verified ONNX",
                       description="Convert a PyTorch .pth, Keras .h5 or ncnn .param(+.bin) file to ONNX that "
                                   "cv2.dnn runs, checked against the source on a probe. Needs the convert "
                                   "extra (pip install 'srzoo[convert]').")
    p.add_argument("input", metavar="INPUT")
    p.add_argument("-o", "--output", metavar="OUT.onnx", help="output file (default: beside INPUT)")
    p.add_argument("--arch", default="auto", help="architecture (default auto: detected from the weights)")
    p.add_argument("--scale", type=int, default=None, metavar="S",
                   help="scale, for multi-scale files (CARN-M) and pre-upsampling networks")
    p.add_argument("--range", type=float, default=None, metavar="R",
                   help="value range of the network's input and output, written to the manifest "
                        "(default 1 for .pth/.h5/ncnn, 255 for TensorFlow models; e.g. 255 for RFDN_AIM.pth)")
    p.add_argument("--manifest", metavar="OUT.toml",
                   help="also write (or extend) a manifest with an entry for the ONNX file")
    p.add_argument("--name", help="model name in the manifest (default: from INPUT)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (never the input)")
    p.set_defaults(func=cmd_convert)
    q = sub.add_parser("inspect", help="what a model file is (format, architecture, scale, inputs)",
                       description="Describe a model file without converting it.")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--scale", type=int, default=None, metavar="S")
    q.add_argument("--arch", default="auto")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_inspect)
