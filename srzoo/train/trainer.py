"""The training loop: seeded, checkpointed after every epoch, resumable.

Determinism: the weights are initialised from ``torch.manual_seed(seed)``, the
batches of epoch ``e`` come from ``numpy.random.default_rng([seed, e])`` and the
learning rate is a function of the step, so a run resumed from the checkpoint of
epoch ``e`` continues exactly as the uninterrupted run (same machine, same
torch thread count: CPU convolutions sum in a thread-dependent order).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from srzoo.errors import SrzooError
from srzoo.train.data import PatchSampler, list_images, make_pairs, split_validation
from srzoo.train.losses import make_loss
from srzoo.train.models import ARCHS, build_model, macs_per_lr_pixel

__all__ = ["TrainConfig", "TrainResult", "train", "validate", "load_checkpoint"]


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in its checkpoint)."""

    scale: int
    data: list[str]
    arch: str = "espcn-res"
    loss: str = "l1"
    epochs: int = 20
    steps_per_epoch: int = 200
    batch: int = 16
    patch: int = 32                       # LR patch side
    lr: float = 1e-3
    lr_min_ratio: float = 0.01            # cosine decay to lr * this
    seed: int = 0
    val_count: int = 4                    # images held out from --data for validation
    downscales: list[float] = field(default_factory=lambda: [1.0])
    init: str | None = None               # checkpoint to start from (fine-tuning)
    threads: int = 0                      # torch threads (0: leave torch's default)

    def key(self) -> str:
        """Hash of the settings a resumed run must share with the original."""
        d = asdict(self)
        d.pop("epochs")  # may be raised on resume
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict]
    config: TrainConfig
    checkpoint: Path | None


def _psnr_y(pred: np.ndarray, ref: np.ndarray, shave: int) -> float:
    # full-range Y in [0,1] -> studio-swing Y in 0..255 (the protocol's scale), unrounded
    a = 16.0 + 219.0 * np.clip(pred, 0.0, 1.0)
    b = 16.0 + 219.0 * ref
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    mse = float(np.mean((a - b) ** 2))
    return 10.0 * math.log10(255.0 ** 2 / max(mse, 1e-12))


def validate(model: torch.nn.Module, pairs, scale: int, pre_upsample: bool = False) -> float:
    """Mean Y PSNR (dB, studio swing, ``scale`` px shaved) over validation pairs."""
    import cv2

    if not pairs:
        return float("nan")
    model.eval()
    vals = []
    with torch.no_grad():
        for p in pairs:
            lr = p.lr
            if pre_upsample:
                lr = cv2.resize(lr, (p.hr.shape[1], p.hr.shape[0]), interpolation=cv2.INTER_CUBIC)
            out = model(torch.from_numpy(np.ascontiguousarray(lr))[None, None]).numpy()[0, 0]
            vals.append(_psnr_y(out, p.hr, scale))
    model.train()
    return float(np.mean(vals))


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    lo = cfg.lr * cfg.lr_min_ratio
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by :func:`train` (a plain dict of tensors and settings)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SrzooError(f"{path}: no such checkpoint") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        raise SrzooError(f"{path}: not a srzoo training checkpoint ({type(e).__name__}: {e})") from None


def _save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, str(tmp))
    os.replace(tmp, path)


def _init_from(model: torch.nn.Module, path: str) -> list[str]:
    """Copy every parameter whose name and shape match; return the names skipped."""
    ck = load_checkpoint(path)
    src = ck.get("model", ck)
    own = model.state_dict()
    skipped = []
    for k, v in own.items():
        if k in src and tuple(src[k].shape) == tuple(v.shape):
            own[k] = src[k]
        else:
            skipped.append(k)
    model.load_state_dict(own)
    return skipped


def train(cfg: TrainConfig, checkpoint: str | Path | None = None, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] | None = print,
          stop_after_epoch: int | None = None) -> TrainResult:
    """Train ``cfg.arch`` at ``cfg.scale`` on patches of the HR images in ``cfg.data``.

    After each epoch: validation PSNR, a log line, and (with ``checkpoint``) an
    atomic checkpoint. With ``resume`` and an existing checkpoint of the same
    settings, training continues after its last epoch. ``stop_after_epoch``
    simulates an interruption (tests).
    """
    from tqdm import tqdm

    if cfg.arch not in ARCHS:
        raise SrzooError(f"unknown architecture {cfg.arch!r}; known: {', '.join(ARCHS)}")
    make_loss(cfg.loss)  # validates the name
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    emit = log or (lambda s: None)
    paths = list_images(cfg.data)
    train_paths, val_paths = split_validation(paths, cfg.val_count)
    pre = ARCHS[cfg.arch].kind == "pre"
    pairs = make_pairs(train_paths, cfg.scale, cfg.downscales)
    val_pairs = make_pairs(val_paths, cfg.scale) if val_paths else []
    sampler = PatchSampler(pairs, cfg.scale, cfg.patch, cfg.batch, cfg.seed, pre_upsample=pre)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, cfg.scale)
    if cfg.init:
        skipped = _init_from(model, cfg.init)
        emit(f"initialised from {cfg.init} (new: {', '.join(skipped) or 'none'})")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = make_loss(cfg.loss)
    history: list[dict] = []
    start = 0
    ck_path = Path(checkpoint) if checkpoint else None
    if resume and ck_path is not None and ck_path.is_file():
        ck = load_checkpoint(ck_path)
        if ck.get("key") != cfg.key():
            raise SrzooError(f"{ck_path}: checkpoint of different settings; remove it or drop --resume")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        history = list(ck["history"])
        start = int(ck["epoch"])
        emit(f"resumed from {ck_path} after epoch {start}")
    total = cfg.epochs * cfg.steps_per_epoch
    macs = macs_per_lr_pixel(model, cfg.scale)
    if start == 0:
        emit(f"{cfg.arch} x{cfg.scale}: {sum(p.numel() for p in model.parameters())} parameters, "
             f"{macs:.0f} multiply-adds per LR pixel; {len(pairs)} training images "
             f"({len(train_paths)} files), {len(val_pairs)} validation; {total} steps")
    model.train()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        bar = tqdm(sampler.epoch(epoch, cfg.steps_per_epoch), total=cfg.steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False,
                   unit="step")
        run_loss = 0.0
        for i, (lr_np, hr_np) in enumerate(bar):
            step = epoch * cfg.steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = _lr_at(cfg, step, total)
            out = model(torch.from_numpy(lr_np))
            loss = loss_fn(out, torch.from_numpy(hr_np))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += float(loss.detach())
            if progress and i % 10 == 0:
                bar.set_postfix(loss=f"{run_loss / (i + 1):.5f}")
        bar.close()
        val = validate(model, val_pairs, cfg.scale, pre)
        rec = {"epoch": epoch + 1, "loss": run_loss / cfg.steps_per_epoch, "val_psnr": val,
               "lr": _lr_at(cfg, (epoch + 1) * cfg.steps_per_epoch, total),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        emit(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.5f}  val PSNR {val:.3f} dB  "
             f"({rec['seconds']:.1f} s)")
        if ck_path is not None:
            _save_atomic({"key": cfg.key(), "config": asdict(cfg), "arch": ARCHS[cfg.arch].to_dict(),
                          "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "epoch": epoch + 1, "history": history}, ck_path)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    model.eval()
    return TrainResult(model, history, cfg, ck_path)
