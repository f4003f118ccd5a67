"""The benchmark report: one row per run, written as JSON, CSV, Markdown or a plot."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from srzoo._version import __version__
from srzoo.errors import SrzooError

#: progress(done, total, description)
ProgressFn = Callable[[int, int, str], None]

CSV_FIELDS = ["protocol", "dataset", "model", "scale", "backend", "backend_resolved", "threads",
              "images", "psnr", "ssim", "ms_ssim", "ms_median", "ms_p95", "mpix_per_s", "load_ms", "repeat",
              "warmup", "status", "note", "backend_reason"]


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------

@dataclass
class BenchReport:
    """Results of one :func:`bench` call; JSON-able via :meth:`to_dict`.

    ``results`` holds one dict per model x scale x backend x threads x dataset
    (keys: :data:`CSV_FIELDS`). ``status`` is ``"ok"``, ``"unavailable: <why>"``
    (the backend cannot run here) or ``"error: <what>"`` (the run failed).
    """

    protocol: str
    protocol_description: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return {"srzoo_version": __version__, "created": self.created, "protocol": self.protocol,
                "protocol_description": self.protocol_description, "machine": self.machine,
                "settings": self.settings, "results": self.results, "skipped": self.skipped}

    @staticmethod
    def _write(text: str, path: str | os.PathLike[str] | None) -> str:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON (non-finite numbers as ``null``); also written to ``path``."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v
        return self._write(json.dumps(clean(self.to_dict()), indent=2) + "\n", path)

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """One line per result row (columns :data:`CSV_FIELDS`); also written to ``path``."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self.results:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
        return self._write(buf.getvalue(), path)

    def _ordered(self) -> list[dict[str, Any]]:
        """Rows grouped for reading: dataset, then scale, then run order (model, backend)."""
        ds_order = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in self.results))}
        idx = {id(r): i for i, r in enumerate(self.results)}
        return sorted(self.results, key=lambda r: (ds_order[r["dataset"]], r["scale"], idx[id(r)]))

    def to_markdown(self, path: str | os.PathLike[str] | None = None) -> str:
        """A table for humans, with the protocol and machine above it."""
        m = self.machine
        s = self.settings
        lines = [
            f"Protocol: **{self.protocol}** ({self.protocol_description}).",
            "",
            f"Machine: {m.get('cpu', '?')}, {m.get('cores_usable', '?')} usable cores; OpenCV "
            f"{m.get('opencv_version', '?')}; Python {m.get('python', '?')}. Timing: "
            f"{s.get('warmup')} warm-up + {s.get('repeat')} timed runs per image, model call only.",
            "",
            "| dataset | model | scale | backend | threads | PSNR (dB) | SSIM | MS-SSIM | ms/img median | "
            "ms/img p95 | Mpix/s | load ms | status |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]

        reasons: dict[str, int] = {}

        def num(v: Any, fmt: str) -> str:
            return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

        for r in self._ordered():
            backend = r["backend"]
            if r.get("backend_resolved") and r["backend_resolved"] != r["backend"]:
                backend += f" → {r['backend_resolved']}"
            status = str(r["status"]).replace("|", "\\|").replace("\n", " ")
            if status != "ok" and len(status) > 40:  # the full reason goes below the table
                kind, _, why = status.partition(": ")
                reasons.setdefault(why, len(reasons) + 1)
                status = f"{kind} [{reasons[why]}]"
            lines.append(
                f"| {r['dataset']} | {r['model']} | x{r['scale']} | {backend} | {r['threads']} | "
                f"{num(r.get('psnr'), '.2f')} | {num(r.get('ssim'), '.4f')} | {num(r.get('ms_ssim'), '.4f')} | "
                f"{num(r.get('ms_median'), '.2f')} | {num(r.get('ms_p95'), '.2f')} | "
                f"{num(r.get('mpix_per_s'), '.2f')} | {num(r.get('load_ms'), '.1f')} | {status} |")
        notes = sorted({r["note"] for r in self.results if r.get("note")})
        if notes or self.skipped or reasons:
            lines.append("")
        for why, n in reasons.items():
            lines.append(f"- [{n}] {why}")
        for n in notes:
            lines.append(f"- {n}")
        for sk in self.skipped:
            lines.append(f"- skipped: {sk}")
        return self._write("\n".join(lines) + "\n", path)

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Speed (ms per image, log scale) against PSNR, one panel per dataset x scale,
        one colour per model and one marker per backend. Needs matplotlib
        (``pip install 'srzoo[plot]'``)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise SrzooError("--plot needs matplotlib: pip install 'srzoo[plot]'") from None
        rows = [r for r in self.results if r["status"] == "ok" and r.get("psnr") is not None
                and r.get("ms_median") and math.isfinite(r["psnr"])]
        panels = list(dict.fromkeys((r["dataset"], r["scale"]) for r in self._ordered() if r in rows))
        if not panels:
            raise SrzooError("nothing to plot: no successful results")
        ncol = min(3, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.2 * nrow), squeeze=False)
        models = sorted({r["model"] for r in rows})
        backends = sorted({r["backend"] + ("" if r["threads"] == "default" else f" t{r['threads']}")
                           for r in rows})
        cmap = plt.get_cmap("tab10")
        colours = {m: cmap(i % 10) for i, m in enumerate(models)}
        markers = dict(zip(backends, "osD^v<>ph*"))
        for ax, (ds, sc) in zip(axes.flat, panels):
            for r in rows:
                if (r["dataset"], r["scale"]) != (ds, sc):
                    continue
                b = r["backend"] + ("" if r["threads"] == "default" else f" t{r['threads']}")
                ax.scatter(r["ms_median"], r["psnr"], color=colours[r["model"]],
                           marker=markers.get(b, "o"), s=40)
                ax.annotate(r["model"], (r["ms_median"], r["psnr"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_title(f"{ds} x{sc}")
            ax.set_xlabel("ms per image (median, log)")
            ax.set_ylabel("PSNR (dB)")
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        handles = [plt.Line2D([], [], color="grey", marker=markers[b], linestyle="", label=b)
                   for b in backends]
        fig.legend(handles=handles, loc="lower right", title="backend")
        fig.suptitle(f"srzoo bench, protocol {self.protocol}")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out
