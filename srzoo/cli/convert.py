"""``srzoo convert INPUT [-o OUT.onnx] [--arch A] [--scale S] [--manifest OUT.toml]`` and ``srzoo inspect FILE``."""

from __future__ import annotations

import argparse
import json
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
        from .catalog import cmd_convert_record

        return cmd_convert_record(args)
    from ..convert.files import convert_file, write_manifest

    done = convert_file(args.input, args.output, arch=args.arch, scale=args.scale, value_range=args.range)
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
    from ..convert.files import inspect_file

    facts = inspect_file(args.file, scale=args.scale, arch=args.arch)
    if args.json:
        print(json.dumps(facts, indent=2, default=str))
        return 0
    for k, v in facts.items():
        print(f"{k + ':':14}{_fmt(v)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=cmd_convert)
    q = sub.add_parser("inspect", help="what a model file is (format, architecture, scale, inputs)",
                       description="Describe a model file without converting it.")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--scale", type=int, default=None, metavar="S")
    q.add_argument("--arch", default="auto")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_inspect)
