"""Video pipeline throughput vs the bare model on the same frames, side by side in one run.

    python bench/video.py --model fsrcnn --scale 2 --size 480x272 --frames 24 --repeat 3

Makes a test clip with PyAV (moving pattern + sine tone, H.264 + AAC in MP4; or
``--input FILE``), decodes its frames once into memory, loads the model once,
then times alternately (bare, pipeline, pipeline, bare, ...):

* bare: ``Upscaler.upscale(frame)`` over the decoded frames, nothing else;
* pipeline: ``srzoo.upscale_video(clip, out, upscaler=...)``: demux, decode,
  colour conversion, the same model, conversion back, encode (``--codec``,
  default libx264 crf 17 preset medium) and mux with the audio copied.

Prints the frames/s of both and the ratio ``median(pipeline fps) /
median(bare fps)``; exits 1 when it is below ``--min-ratio`` (0.85). Also
times decode-only and encode-only passes over the same frames, which is the
work the pipeline adds to the model's; on a CPU-only machine that work shares
the cores with the model, so ``model / (model + decode + encode)`` bounds the
ratio (printed as "best overlap"; "no overlap" is what running the stages one
after another would give). ``--offcpu-ms N`` replaces the model by a stand-in
that waits N ms per frame off the CPU, as an accelerator backend does (this
machine has none): then the bound is ``model / slowest stage``.

``--memory`` also runs the pipeline in fresh processes on a short and a
4x longer clip (bicubic, so it is quick) and prints each peak RSS: with a
bounded number of frames in flight the two are about the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_clip(path: Path, n: int, w: int, h: int, rate: int = 25) -> None:
    import av

    ys, xs = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.codec_context.options = {"crf": "18", "preset": "veryfast"}
        a = out.add_stream("aac", rate=48000)
        for k in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (xs + k * 3) % 256
            img[..., 1] = (ys * 2 + k * 5) % 256
            img[((ys + k) // 16 + (xs + 2 * k) // 16) % 2 == 0, 2] = 200
            f = av.VideoFrame.from_ndarray(img, format="bgr24")
            f.pts = k
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        sr = 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(n / rate * sr)) / sr)).astype(np.float32)
        for i in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = sr, i, Fraction(1, sr)
            out.mux(a.encode(af))
        out.mux(a.encode(None))


def decode_all(path: Path) -> tuple[list[np.ndarray], float]:
    import av

    t = time.perf_counter()
    with av.open(str(path)) as c:
        c.streams.video[0].thread_type = "AUTO"
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    return frames, time.perf_counter() - t


def encode_only(frames: list[np.ndarray], path: Path, codec: str, opts: dict[str, str]) -> float:
    import av

    h, w = frames[0].shape[:2]
    t = time.perf_counter()
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=25)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p" if codec != "ffv1" else "yuv420p"
        v.codec_context.options = opts
        for k, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format=v.pix_fmt)
            f.pts = k
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return time.perf_counter() - t


class OffCpuModel:
    """``--offcpu-ms N``: a stand-in for a model that runs off the CPU (a GPU or NPU
    backend, which this machine lacks): bicubic on the CPU plus N ms of waiting
    that leaves the cores free, as a device's kernel time does."""

    def __init__(self, ms: float, scale: int) -> None:
        import srzoo

        self.inner = srzoo.Upscaler("bicubic", scale, backend="cpu")
        self.ms, self.scale = ms, scale
        self.model, self.backend = f"offcpu-{ms:g}ms", "stand-in"

    def upscale(self, image: np.ndarray, tile: int | None = None) -> np.ndarray:
        time.sleep(self.ms / 1000)
        return self.inner.upscale(image)

    __call__ = upscale


_MEM_CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[3])
import srzoo
r = srzoo.upscale_video(sys.argv[1], sys.argv[2], "bicubic", 2, progress=False, backend="cpu")
print(r.frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fsrcnn")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--size", default="480x272", help="WxH of the generated clip")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--input", type=Path, help="use this video instead of a generated clip")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    ap.add_argument("--codec", default=None, help="pipeline encoder (default: srzoo's, libx264)")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--min-ratio", type=float, default=0.85)
    ap.add_argument("--offcpu-ms", type=float, default=0,
                    help="instead of --model: a stand-in that waits N ms per frame off the CPU, "
                         "like an accelerator backend")
    ap.add_argument("--memory", action="store_true", help="also compare peak RSS, short vs 4x long clip")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import cv2

    import srzoo
    from srzoo.jobs.video import CODECS, DEFAULT_CODEC

    tmp = Path(tempfile.mkdtemp(prefix="srzoo-bench-video-"))
    if args.input:
        clip = args.input
    else:
        w, h = (int(x) for x in args.size.lower().split("x"))
        clip = tmp / "clip.mp4"
        make_clip(clip, args.frames, w, h)
    frames, t_decode = decode_all(clip)
    n = len(frames)
    up = (OffCpuModel(args.offcpu_ms, args.scale) if args.offcpu_ms
          else srzoo.Upscaler(args.model, args.scale, backend=args.backend))
    up.upscale(frames[0])  # warm-up (graph init)
    out = tmp / f"out{clip.suffix or '.mkv'}"

    def bare() -> float:
        t = time.perf_counter()
        for f in frames:
            up.upscale(f)
        return n / (time.perf_counter() - t)

    def pipeline() -> float:
        t = time.perf_counter()
        r = srzoo.upscale_video(clip, out, upscaler=up, codec=args.codec, preset=args.preset,
                                progress=False)
        dt = time.perf_counter() - t
        assert r.frames == n, (r.frames, n)
        return n / dt

    bare_fps: list[float] = []
    pipe_fps: list[float] = []
    for i in range(args.repeat):
        order = (bare, pipeline) if i % 2 == 0 else (pipeline, bare)
        for fn in order:
            (bare_fps if fn is bare else pipe_fps).append(fn())
    codec = args.codec or DEFAULT_CODEC
    opts = {k: str(v) for k, v in (("crf", CODECS.get(codec, {}).get("crf")),
                                   ("preset", args.preset or CODECS.get(codec, {}).get("preset")))
            if v is not None}
    big = [up.upscale(f) for f in frames[: min(n, 12)]]
    t_enc = encode_only(big, tmp / "enc.mp4", codec, opts) / len(big)
    ratio = statistics.median(pipe_fps) / statistics.median(bare_fps)
    h, w = frames[0].shape[:2]
    report = {
        "model": up.model, "scale": args.scale, "input": f"{w}x{h}", "frames": n,
        "codec": codec, "encoder_options": opts, "backend": up.backend,
        "cpu_count": os.cpu_count(), "cv2_threads": cv2.getNumThreads(),
        "bare_fps": [round(x, 3) for x in bare_fps], "pipeline_fps": [round(x, 3) for x in pipe_fps],
        "bare_fps_median": round(statistics.median(bare_fps), 3),
        "pipeline_fps_median": round(statistics.median(pipe_fps), 3),
        "ratio": round(ratio, 4),
        "decode_ms_per_frame": round(t_decode / n * 1000, 2),
        "encode_ms_per_frame": round(t_enc * 1000, 2),
        "model_ms_per_frame": round(1000 / statistics.median(bare_fps), 2),
    }
    m, d, e = (report[k] for k in ("model_ms_per_frame", "decode_ms_per_frame", "encode_ms_per_frame"))
    # the best a perfect overlap can do: a CPU model shares the cores with decode and
    # encode (all of them add up); an off-CPU model only waits for the slowest stage
    report["bound_ratio"] = round(m / max(m, d, e) if args.offcpu_ms else m / (m + d + e), 4)
    report["serial_ratio"] = round(m / (m + d + e), 4)  # decode, model, encode one after another
    if args.memory:
        rss = {}
        for k, frames_n in (("short", 48), ("long", 192)):
            c = tmp / f"mem_{k}.mp4"
            make_clip(c, frames_n, 320, 180)
            res = subprocess.run([sys.executable, "-c", _MEM_CHILD, str(c), str(tmp / f"mem_{k}_x2.mp4"),
                                  str(Path(__file__).resolve().parents[1])],
                                 capture_output=True, text=True, check=True)
            got, kib = res.stdout.split()
            rss[k] = {"frames": int(got), "peak_rss_mib": round(int(kib) / 1024, 1)}
        report["memory"] = rss
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{up.model} x{args.scale} on {n} frames {w}x{h}, {up.backend}, pipeline encoder "
              f"{codec} {opts}, {os.cpu_count()} CPUs")
        print(f"  bare model   : {report['bare_fps_median']:.2f} frames/s  (runs {report['bare_fps']})")
        print(f"  whole video  : {report['pipeline_fps_median']:.2f} frames/s  (runs {report['pipeline_fps']})")
        print(f"  ratio        : {ratio * 100:.1f} %  (target >= {args.min_ratio * 100:.0f} %)")
        print(f"  per frame    : model {report['model_ms_per_frame']} ms, decode alone "
              f"{report['decode_ms_per_frame']} ms, encode alone {report['encode_ms_per_frame']} ms")
        how = ("model / slowest stage" if args.offcpu_ms else
               "model / (model + decode + encode), all on the same cores")
        print(f"  best overlap : {report['bound_ratio'] * 100:.1f} %  ({how}); no overlap: "
              f"{report['serial_ratio'] * 100:.1f} %")
        if args.memory:
            m = report["memory"]
            print(f"  peak RSS     : {m['short']['frames']} frames {m['short']['peak_rss_mib']} MiB, "
                  f"{m['long']['frames']} frames {m['long']['peak_rss_mib']} MiB")
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
