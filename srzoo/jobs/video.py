"""Video in, video out: ``upscale_video(src, dst, model, scale)``, streaming with PyAV.

>>> srzoo.upscale_video("clip.mp4", "clip_x2.mp4", "fsrcnn", 2)   # doctest: +SKIP

One pass, no temporary frame folders: a reader thread demuxes and decodes, a
model thread upscales (with :class:`srzoo.Upscaler`, so every model family,
backend and automatic tiling work), and the calling thread converts, encodes
and muxes. Bounded queues between them keep at most ``max_in_flight`` frames
in each hop, so memory does not grow with the video's length and the model
never waits for I/O.

Nothing is lost: audio and subtitle packets are copied unchanged (no
re-encoding); every frame keeps its timestamp (variable frame rate too) and
duration; frame rate, time base, rotation (display matrix), colour metadata,
chapters, container and stream metadata (title, language) are carried over. 10-bit sources go through
the model as 16-bit and stay 10-bit where the codec allows.

The output is written under a temporary name beside ``dst`` and renamed at the
end, so an interrupted or killed run never leaves a file under ``dst``.

PyAV is an optional extra: ``pip install 'srzoo[video]'``.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from srzoo import config, fsutil
from srzoo.errors import SrzooError
from srzoo.jobs.files import file_tag, glob_files
from srzoo.runtime.imageio import _umask, megapixels
from srzoo.runtime.upscaler import get_upscaler


class VideoError(SrzooError):
    """A video cannot be read, upscaled or written: the message names the file and what to do."""


#: per encoder: default options (crf, preset) and extra codec options
CODECS: dict[str, dict[str, Any]] = {
    # crf 17 is the usual "visually lossless" setting of x264
    "libx264": {"crf": 17, "preset": "medium", "extra": {}},
    "libx265": {"crf": 19, "preset": "medium", "extra": {"x265-params": "log-level=error"}},
    "libsvtav1": {"crf": 24, "preset": "8", "extra": {}},
    # vp9: constant quality needs bit rate 0; the "preset" is its cpu-used (0 slow .. 8 fast)
    "libvpx-vp9": {"crf": 24, "preset": "4", "extra": {"row-mt": "1"}},
    "ffv1": {"crf": None, "preset": None, "extra": {"slicecrc": "1"}},  # lossless
}
DEFAULT_CODEC = "libx264"
#: containers that only take some codecs: their default encoder
_CONTAINER_CODEC = {"webm": "libvpx-vp9"}
#: output extension -> FFmpeg muxer (the temporary file's name does not say it)
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
           ".avi": "avi", ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".nut": "nut",
           ".flv": "flv"}
#: container formats PyAV opens that are still images, not videos
_IMAGE_FORMATS = {"image2", "gif", "apng", "ico", "webp"}
#: AVColorSpace -> the swscale matrix PyAV's reformat knows
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}

ON_CORRUPT = ("skip", "fail")
#: how much lower the decode and encode threads run than the model thread (nice steps; Linux)
IO_NICE = 5


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise VideoError("video needs PyAV, which is not installed: pip install 'srzoo[video]'") from None
    return av


# --------------------------------------------------------------------------- probing
# first bytes of common video containers, to name the missing extra without PyAV
_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (8, b"AVI "), (0, b"FLV"), (0, b"\x00\x00\x01\xba"))
#: the same with their names, and y4m: what a file FFmpeg cannot open says it is
_CONTAINERS = ((4, b"ftyp", "MP4/QuickTime"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (8, b"AVI ", "AVI"),
               (0, b"FLV", "FLV"), (0, b"\x00\x00\x01\xba", "MPEG program stream"),
               (0, b"YUV4MPEG2 ", "YUV4MPEG2 (y4m)"))


def container_kind(path: str | os.PathLike[str]) -> str | None:
    """The video container a file's first bytes announce (``MP4/QuickTime``...), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    return next((name for off, m, name in _CONTAINERS if head[off:off + len(m)] == m), None)


def _y4m_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a y4m stream header (its first line), or None."""
    try:
        with open(path, "rb") as f:
            line = f.readline(4096)
    except OSError:
        return None
    if not line.startswith(b"YUV4MPEG2 "):
        return None
    w = h = None
    for tok in line.split()[1:]:
        if tok[:1] == b"W" and tok[1:].isdigit():
            w = int(tok[1:])
        elif tok[:1] == b"H" and tok[1:].isdigit():
            h = int(tok[1:])
    return (w, h) if w and h else None


def _no_video_stream(src: Path, container: Any) -> VideoError:
    kinds = ", ".join(f"{s.type} ({s.codec_context.name})" for s in container.streams) or "no streams"
    return VideoError(f"{src}: a {container.format.long_name or container.format.name} file with no "
                      f"video stream (it holds: {kinds}); nothing to upscale")


def is_video(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a file whose container holds a video stream (probed
    with PyAV, not judged by the name); False for still images and non-media
    files. Without PyAV a file that looks like a video raises :class:`VideoError`
    naming the extra to install."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        import av
    except ImportError:
        try:
            with open(p, "rb") as f:
                head = f.read(16)
        except OSError:
            return False
        if any(head[off:off + len(m)] == m for off, m in _MAGIC) or (head[:1] == b"\x47" and
                                                                    p.suffix.lower() == ".ts"):
            _import_av()  # raises, naming the extra
        return False
    try:
        with av.open(str(p), "r", timeout=10) as c:
            name = c.format.name
            if name in _IMAGE_FORMATS or name.endswith("_pipe"):
                return False
            # audio-only media too: the video path says what the file is, not "not an image"
            return any(s.type in ("video", "audio") for s in c.streams)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        # a truncated or damaged video container is still a video: say so, not "not an image"
        return container_kind(p) is not None


def split_videos(items: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[str]]:
    """(video files, everything else) of command-line inputs; only existing files are probed."""
    import glob

    videos: list[Path] = []
    rest: list[str] = []
    for item in items:
        text = os.fspath(item)
        if is_video(text):
            videos.append(Path(text))
        elif not Path(text).exists() and glob.has_magic(text):
            found = sorted(glob_files(text))  # ** never loops through folder links
            if not found:
                rest.append(text)  # the image path reports that it matches nothing
            for f in found:
                (videos.append(Path(f)) if is_video(f) else rest.append(f))
        else:
            rest.append(text)
    return videos, rest


def video_output_path(src: Path, out: Path | None, model: str, scale: int, *, single: bool) -> Path:
    """``<stem>_<model>_x<scale><ext>`` beside the input or in an output folder (as for
    images: two models into one folder replace nothing), or ``OUT`` itself for a single
    input and an ``OUT`` with a video extension. The extension is the input's where FFmpeg
    can write it, else ``.mkv`` (it holds any stream)."""
    ext = src.suffix.lower() if src.suffix.lower() in _MUXERS else ".mkv"
    name = f"{src.stem}_{file_tag(model)}_x{scale}{ext}"
    if out is None:
        return src.with_name(name)
    if single and out.suffix.lower() in _MUXERS and not out.is_dir():
        return out
    return out / name


# --------------------------------------------------------------------------- result
@dataclass
class VideoResult:
    """What :func:`upscale_video` did."""

    input: str
    output: Path
    frames: int = 0
    in_size: tuple[int, int] = (0, 0)
    out_size: tuple[int, int] = (0, 0)
    codec: str = ""
    pix_fmt: str = ""
    crf: int | None = None
    copied: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    seconds: float = 0.0
    model: str = ""
    scale: int = 0
    backend: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: what went in, what came out, how fast."""
        (w, h), (W, H) = self.in_size, self.out_size
        enc = f"{self.codec} {self.pix_fmt}" + (f" crf {self.crf}" if self.crf is not None else "")
        line = (f"{self.input} -> {self.output}: {self.frames} frames {w}x{h} -> {W}x{H} "
                f"({self.model} x{self.scale}, {self.backend}; {enc}), "
                f"{len(self.copied)} stream(s) copied, {self.seconds:.1f} s, {self.fps:.1f} frames/s")
        if self.corrupt:
            line += f", {len(self.corrupt)} corrupt packet(s) skipped"
        if self.dropped:
            line += f", not copied: {', '.join(self.dropped)}"
        return line


# --------------------------------------------------------------------------- threads
_END = object()


class _Stop(Exception):
    """Another stage failed or the run was interrupted."""


class _Stages:
    """Bounded queues between threads that give up as soon as one stage fails."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, e: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = e
        self.stop.set()

    def put(self, q: "queue.Queue[Any]", item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                pass

    def get(self, q: "queue.Queue[Any]") -> Any:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                pass

    def thread(self, fn: Callable[[], None], name: str) -> threading.Thread:
        def body() -> None:
            try:
                fn()
            except _Stop:
                pass
            except BaseException as e:  # handed to the caller's thread
                self.fail(e)

        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        return t


@dataclass
class _Frame:
    index: int
    pts: int | None
    duration: int
    image: np.ndarray


@dataclass
class _First:
    """What the writer needs from the first decoded frame to open the output."""

    rotation: int
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    format: str
    high_bit: bool
    is_rgb: bool


# --------------------------------------------------------------------------- helpers
def _seconds(ts: int | None, tb: Fraction | None) -> str:
    if ts is None or tb is None:
        return "unknown time"
    return f"{float(ts * tb):.3f} s"


def _reason(e: BaseException) -> str:
    """FFmpeg's own words ("Invalid data found when processing input"), without errno and call."""
    if getattr(e, "strerror", None):
        return str(e.strerror)  # type: ignore[attr-defined]
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


def _muxer(dst: Path, av: Any) -> str:
    ext = dst.suffix.lower()
    if ext in _MUXERS:
        return _MUXERS[ext]
    if ext:
        try:
            with av.open(os.devnull, "w", format=ext[1:]):
                return ext[1:]
        except (ValueError, av.error.FFmpegError):
            pass
    raise VideoError(f"{dst}: unknown video container {ext or '(no extension)'!r}; use one of "
                     f"{', '.join(sorted(_MUXERS))}")


def _codec_formats(av: Any, codec: str) -> list[str]:
    try:
        c = av.codec.Codec(codec, "w")
    except Exception:
        raise VideoError(f"unknown video encoder {codec!r}; use one of {', '.join(CODECS)}") from None
    if c.type != "video":
        raise VideoError(f"{codec!r} is not a video encoder; use one of {', '.join(CODECS)}")
    return [f.name for f in (c.video_formats or ())]


def choose_pix_fmt(supported: list[str], source: str, high_bit: bool,
                   requested: str | None = None) -> str:
    """The output pixel format: ``requested`` if the codec takes it; else the
    source's; else 4:2:0 at the source's bit depth (10-bit stays 10-bit where the
    codec has it); else the codec's first."""
    if requested:
        if supported and requested not in supported:
            raise VideoError(f"the encoder cannot write pixel format {requested!r}; it takes "
                             f"{', '.join(supported)}")
        return requested
    if source in supported or not supported:
        return source
    for cand in (("yuv420p10le", "yuv420p") if high_bit else ("yuv420p",)):
        if cand in supported:
            return cand
    return supported[0]


def _subsampled(pix_fmt: str, av: Any) -> tuple[bool, bool]:
    fmt = av.VideoFormat(pix_fmt, 64, 64)
    comps = [c for c in fmt.components if c.is_chroma]
    return (any(c.width < 64 for c in comps), any(c.height < 64 for c in comps))


def _tmp_name(dst: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=f".part{dst.suffix}", dir=dst.parent)
    os.close(fd)
    return Path(tmp)


class _SigtermAsInterrupt:
    """In the main thread, turn SIGTERM into KeyboardInterrupt while a video is
    written, so ``kill`` cleans up the temporary file like Ctrl-C does."""

    def __enter__(self) -> None:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    self.old = signal.signal(signal.SIGTERM, self._raise)
            except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                self.old = None

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


# --------------------------------------------------------------------------- the pipeline
def upscale_video(src: str | os.PathLike[str], dst: str | os.PathLike[str], model: Any = "espcn",
                  scale: int = 2, *, backend: str = "auto", tile: int | None = None,
                  codec: str | None = None, crf: int | None = None, preset: str | None = None,
                  pix_fmt: str | None = None, on_corrupt: str = "skip",
                  progress: bool | None = None, max_in_flight: int = 4,
                  on_warning: Callable[[str], None] | None = None,
                  upscaler: Any = None) -> VideoResult:
    """Upscale every frame of the video ``src`` into the video ``dst``.

    ``model``/``scale``/``backend``/``tile``: as for :func:`srzoo.upscale` (or
    pass a ready :class:`srzoo.Upscaler` as ``upscaler``). ``codec``: ``libx264``
    (default; ``libvpx-vp9`` for .webm), ``libx265``, ``libsvtav1``,
    ``libvpx-vp9`` or ``ffv1`` (lossless); ``crf``/``preset``: its quality and
    speed (defaults: x264 crf 17 preset medium, visually lossless);
    ``pix_fmt``: output pixel format (default: the source's, else 4:2:0 at the
    source's bit depth). ``on_corrupt``: ``"skip"`` a packet the decoder rejects
    (reported through ``on_warning`` with its time) or ``"fail"``.
    ``progress``: a bar with frames, frames/s and ETA (``None``: on a terminal).
    ``max_in_flight``: frames queued between each pair of stages.

    Audio and subtitle streams are copied, timestamps and metadata kept; the
    file appears under ``dst`` only when complete. Raises :class:`VideoError`.
    """
    av = _import_av()
    src_p, dst_p = Path(src), Path(dst)
    if on_corrupt not in ON_CORRUPT:
        raise VideoError(f"on_corrupt must be one of {', '.join(ON_CORRUPT)}, got {on_corrupt!r}")
    if max_in_flight < 1:
        raise VideoError(f"max_in_flight must be >= 1, got {max_in_flight}")
    if not src_p.is_file():
        raise VideoError(f"{src_p}: no such file")
    if dst_p.exists() and dst_p.resolve() == src_p.resolve():
        raise VideoError(f"output {dst_p} is the input; write elsewhere")
    fmt_name = _muxer(dst_p, av)
    if codec is None:
        codec = _CONTAINER_CODEC.get(fmt_name, DEFAULT_CODEC)
    supported = _codec_formats(av, codec)
    opts = CODECS.get(codec, {"crf": None, "preset": None, "extra": {}})
    if crf is not None and opts["crf"] is None and codec in CODECS:
        raise VideoError(f"{codec} is lossless: it has no --crf")
    if preset is not None and opts["preset"] is None and codec in CODECS:
        raise VideoError(f"{codec} has no --preset")
    crf = opts["crf"] if crf is None else int(crf)
    preset = opts["preset"] if preset is None else str(preset)

    y4m = _y4m_size(src_p)
    if y4m is not None:  # FFmpeg would try to allocate such frames before we could check them
        limit = int(config.get("SRZOO_MAX_PIXELS"))
        if y4m[0] * y4m[1] > limit:
            raise VideoError(f"{src_p}: a {y4m[0]}x{y4m[1]} YUV4MPEG2 (y4m) video: each frame is "
                             f"{megapixels(y4m[0] * y4m[1])}, above the limit of {megapixels(limit)} "
                             "(SRZOO_MAX_PIXELS); crop or downscale it first")
    try:
        inp = av.open(str(src_p), "r")
    except (av.error.FFmpegError, OSError) as e:
        kind = container_kind(src_p)
        art = "an" if kind and kind[0] in "AEFIMO" else "a"
        what = f"{art} {kind} file that FFmpeg cannot open" if kind else "cannot open as a video"
        why = " (truncated or damaged?)" if kind else ""
        raise VideoError(f"{src_p}: {what}: {_reason(e)}{why}") from None
    if not inp.streams.video:
        err = _no_video_stream(src_p, inp)
        inp.close()
        raise err

    if upscaler is None:
        try:
            up = get_upscaler(model, scale, backend=backend)
        except BaseException:
            inp.close()
            raise
    else:
        up = upscaler
    scale = up.scale
    in_v = inp.streams.video[0]
    in_v.thread_type = "AUTO"
    copy_streams = [s for s in inp.streams if s.type in ("audio", "subtitle")]
    result = VideoResult(str(src_p), dst_p, codec=codec, crf=crf, model=up.model, scale=scale,
                         backend=up.backend)
    warn = on_warning or (lambda msg: None)
    for s in inp.streams:
        if s is not in_v and s not in copy_streams:
            what = f"#{s.index} {s.type} {s.codec_context.name if s.codec_context else ''}".strip()
            if s.type == "video":
                what += " (only the first video stream is upscaled)"
            result.dropped.append(what)
    rate = in_v.average_rate or in_v.guessed_rate or Fraction(25)
    total = in_v.frames or 0
    if not total and inp.duration and in_v.guessed_rate:
        total = round(inp.duration / 1e6 * float(in_v.guessed_rate))

    stages = _Stages()
    q_dec: "queue.Queue[Any]" = queue.Queue(maxsize=max_in_flight)
    q_up: "queue.Queue[Any]" = queue.Queue(maxsize=max_in_flight)
    first_box: list[_First] = []

    # ---- stage 1: demux and decode (reader thread) -----------------------------
    def corrupt(ts: int | None, why: str) -> None:
        when = _seconds(ts, in_v.time_base)
        where = f"{src_p}: corrupt video packet at {when}: {why}"
        if on_corrupt == "fail":
            raise VideoError(f"{where} (on_corrupt='skip' / --on-corrupt skip drops it and goes on)")
        result.corrupt.append(when)
        warn(f"{where}; skipped")

    def read() -> None:
        _lower_priority(IO_NICE)  # FFmpeg's decoder threads, created from here, inherit it
        index = 0
        work_fmt = "bgr24"
        convert: dict[str, Any] = {}
        last_pts: int | None = None

        # timestamps of packets sent to the decoder whose frame has not come out: with
        # frame threads a decoding error surfaces packets later, and names the wrong one
        inflight: set[int] = set()

        def emit(frame: Any) -> None:
            nonlocal index, work_fmt, convert, last_pts
            if frame.pts is not None:
                inflight.difference_update([t for t in inflight if t <= frame.pts])
            if frame.is_corrupt:
                corrupt(frame.pts, "the decoder flagged the frame as damaged")
                return
            if not first_box:
                high = max(c.bits for c in frame.format.components) > 8
                work_fmt = "bgr48le" if high else "bgr24"
                if not frame.format.is_rgb:
                    convert = {"src_colorspace": _SWS_MATRIX.get(int(frame.colorspace)),
                               "src_color_range": int(frame.color_range) or None}
                first_box.append(_First(int(frame.rotation or 0), int(frame.colorspace),
                                        int(frame.color_range), int(frame.color_primaries),
                                        int(frame.color_trc), frame.format.name, high,
                                        bool(frame.format.is_rgb)))
            pts = frame.pts
            if pts is None:
                pts = frame.dts
            if pts is None:  # no timestamp at all: one frame duration after the last
                step = int(frame.duration or 0) or max(1, round(1 / (rate * in_v.time_base)))
                pts = 0 if last_pts is None else last_pts + step
            if pts is not None and last_pts is not None and pts <= last_pts:
                pts = last_pts + 1  # encoders refuse repeated timestamps
            if pts is not None:
                last_pts = pts
            img = frame.to_ndarray(format=work_fmt, **convert)
            stages.put(q_dec, _Frame(index, pts, int(frame.duration or 0), img))
            index += 1

        try:
            for packet in inp.demux(in_v, *copy_streams):
                if packet.stream is in_v:
                    if packet.is_corrupt:
                        corrupt(packet.pts, "the demuxer flagged it as damaged")
                        continue
                    if packet.pts is not None:
                        inflight.add(packet.pts)
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError as e:
                        lost = min(inflight) if inflight else packet.pts
                        inflight.discard(lost)
                        corrupt(lost, _reason(e))
                        continue
                    for frame in frames:
                        emit(frame)
                elif packet.dts is not None or packet.pts is not None:
                    stages.put(q_dec, packet)
            # demux() ends with an empty packet per stream, which flushed the decoder
        except av.error.FFmpegError as e:
            if isinstance(e, av.error.InvalidDataError) and on_corrupt == "skip":
                warn(f"{src_p}: the container is damaged after frame {index}: {_reason(e)}; "
                     "stopped reading there")
            else:
                raise VideoError(f"{src_p}: cannot read the video after frame {index}: "
                                 f"{_reason(e)}") from None
        stages.put(q_dec, _END)

    # ---- stage 2: the model (model thread) --------------------------------------
    def model_stage() -> None:
        while True:
            item = stages.get(q_dec)
            if isinstance(item, _Frame):
                item.image = up.upscale(item.image, tile=tile)
            stages.put(q_up, item)
            if item is _END:
                return

    # ---- stage 3: encode and mux (encoder thread) -------------------------------
    dst_p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dst_p)
    out = None
    bar = None
    threads: list[threading.Thread] = []
    t0 = time.perf_counter()

    def write_stage() -> None:
        _lower_priority(IO_NICE)  # FFmpeg's encoder threads, created from here, inherit it
        _write(av, stages, q_up, out, inp, in_v, copy_streams, first_box, result, codec, crf,
               preset, pix_fmt, supported, opts["extra"], bar, src_p, dst_p)

    try:
        with _SigtermAsInterrupt():
            out = av.open(str(tmp), "w", format=fmt_name)
            if progress or progress is None:
                from tqdm import tqdm

                bar = tqdm(total=total or None, unit="frame", file=sys.stderr, dynamic_ncols=True,
                           disable=None if progress is None else not progress,
                           desc=f"{up.model} x{scale}")
            threads = [stages.thread(read, "srzoo-video-decode"),
                       stages.thread(model_stage, "srzoo-video-model"),
                       stages.thread(write_stage, "srzoo-video-encode")]
            for t in threads:
                while t.is_alive():  # short waits: Ctrl-C and SIGTERM get through
                    t.join(0.1)
            if stages.error is not None:
                raise stages.error
            out.close()
            out = None
            os.chmod(tmp, 0o666 & ~_umask())
            fsutil.install(tmp, dst_p)  # a device, FIFO or link to one is written through
    except BaseException:
        stages.stop.set()
        try:
            for t in threads:
                t.join()
        finally:  # even if a second Ctrl-C interrupts the wait
            _cleanup(out, tmp)
        if stages.error is not None and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            raise stages.error from None
        raise
    finally:
        if bar is not None:
            bar.close()
        inp.close()
    result.seconds = time.perf_counter() - t0
    return result


def _lower_priority(nice: int) -> None:
    """Raise this thread's nice value by ``nice`` (Linux: per thread), so decoding and
    encoding take the CPU time the model leaves instead of stalling its parallel loops."""
    if nice <= 0 or not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:  # pragma: no cover - not allowed here: run at the same priority
        pass


def _cleanup(out: Any, tmp: Path) -> None:
    if out is not None:
        try:
            out.close()
        except Exception:
            pass
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _write(av: Any, stages: _Stages, q_up: "queue.Queue[Any]", out: Any, inp: Any, in_v: Any,
           copy_streams: list[Any], first_box: list[_First], result: VideoResult, codec: str,
           crf: int | None, preset: str | None, pix_fmt: str | None, supported: list[str],
           extra: dict[str, str], bar: Any, src_p: Path, dst_p: Path) -> None:
    """Open the output on the first frame, then encode frames and mux copied packets in order."""
    pending: list[Any] = []  # copied packets that arrive before the first frame
    out_v = None
    mapping: dict[int, Any] = {}
    work_fmt = "bgr24"
    reformat: dict[str, Any] = {}
    tb = in_v.time_base

    def mux(packets: Iterable[Any]) -> None:
        try:
            out.mux(packets)
        except av.error.FFmpegError as e:
            refused = [f"{s.type} stream #{s.index} ({s.codec_context.name})" for s in copy_streams
                       if s.codec_context.name not in out.supported_codecs]
            hint = (f"; {dst_p.suffix} cannot hold {', '.join(refused)}: use the input's container "
                    f"({src_p.suffix or 'same format'})" if refused else "")
            raise VideoError(f"{dst_p}: cannot write: {_reason(e)}{hint}") from None

    def open_output(img: np.ndarray) -> Any:
        nonlocal work_fmt, reformat
        first = first_box[0]
        H, W = img.shape[:2]
        chosen = choose_pix_fmt(supported, first.format, first.high_bit, pix_fmt)
        sub_w, sub_h = _subsampled(chosen, av)
        if (sub_w and W % 2) or (sub_h and H % 2):
            raise VideoError(f"{src_p}: the upscaled frames are {W}x{H}, but {chosen} needs an even "
                             "width and height; use another scale or --pix-fmt yuv444p")
        rate = in_v.average_rate or in_v.guessed_rate or Fraction(25)
        try:
            v = out.add_stream(codec, rate=rate)
        except (ValueError, av.error.FFmpegError) as e:
            raise VideoError(f"{dst_p}: cannot use encoder {codec}: {_reason(e)}") from None
        v.width, v.height, v.pix_fmt = W, H, chosen
        v.time_base = tb
        cc = v.codec_context
        cc.time_base = tb
        cc.framerate = rate
        if in_v.sample_aspect_ratio:
            cc.sample_aspect_ratio = in_v.sample_aspect_ratio
        options = dict(extra)
        if crf is not None:
            options["crf"] = str(crf)
            if codec == "libvpx-vp9":
                cc.bit_rate = 0
        if preset is not None:
            options["cpu-used" if codec == "libvpx-vp9" else "preset"] = str(preset)
        cc.options = options
        if not av.VideoFormat(chosen).is_rgb and not first.is_rgb:  # YUV to YUV: same matrix
            cc.color_range = first.color_range
            cc.colorspace = first.colorspace
            reformat = {"dst_colorspace": _SWS_MATRIX.get(first.colorspace),
                        "dst_color_range": first.color_range or None}
        cc.color_primaries = first.color_primaries
        cc.color_trc = first.color_trc
        if first.rotation:
            v.set_display_rotation(first.rotation)
        v.metadata.update({k: val for k, val in in_v.metadata.items() if k in ("language", "title")})
        work_fmt = "bgr48le" if img.dtype == np.uint16 else "bgr24"
        for s in copy_streams:
            try:
                o = out.add_stream_from_template(s)
            except (ValueError, av.error.FFmpegError) as e:
                raise VideoError(f"{src_p}: {s.type} stream #{s.index} ({s.codec_context.name}) "
                                 f"cannot be stored in {dst_p.suffix or 'this container'} "
                                 f"({_reason(e)}); use the input's container "
                                 f"({src_p.suffix or 'same format'})") from None
            o.metadata.update(s.metadata)
            mapping[s.index] = o
            result.copied.append(f"#{s.index} {s.type} {s.codec_context.name}")
        chapters = inp.chapters() if hasattr(inp, "chapters") else []
        if chapters:
            out.set_chapters(chapters)
        out.metadata.update({k: val for k, val in inp.metadata.items()
                             if k not in ("encoder", "major_brand", "minor_version",
                                          "compatible_brands")})
        result.pix_fmt = chosen
        result.in_size = (int(in_v.codec_context.width), int(in_v.codec_context.height))
        result.out_size = (W, H)
        return v

    def copy(packet: Any) -> None:
        packet.stream = mapping[packet.stream_index]
        mux(packet)

    while True:
        item = stages.get(q_up)
        if item is _END:
            break
        if not isinstance(item, _Frame):
            if out_v is None:
                pending.append(item)
            else:
                copy(item)
            continue
        if out_v is None:
            out_v = open_output(item.image)
            if result.in_size[0] == 0:
                result.in_size = (item.image.shape[1] // result.scale, item.image.shape[0] // result.scale)
        frame = av.VideoFrame.from_ndarray(item.image, format=work_fmt)
        frame = frame.reformat(format=out_v.pix_fmt, **reformat)
        frame.pts = item.pts
        frame.time_base = tb
        if item.duration:
            frame.duration = item.duration
        try:
            packets = out_v.encode(frame)
        except av.error.FFmpegError as e:
            raise VideoError(f"{dst_p}: the {codec} encoder failed: {_reason(e)}") from None
        mux(packets)
        if pending:
            for p in pending:
                copy(p)
            pending.clear()
        result.frames += 1
        if bar is not None:
            bar.update(1)
    if out_v is None:
        raise VideoError(f"{src_p}: no video frame could be decoded")
    mux(out_v.encode(None))
    for p in pending:
        copy(p)


__all__ = ["CODECS", "ON_CORRUPT", "VideoError", "VideoResult", "choose_pix_fmt", "is_video",
           "split_videos", "upscale_video", "video_output_path"]
