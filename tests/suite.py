"""What tests import by name (a conftest is not importable by name: with tests/serve's own
conftest collected first, `from conftest import` would find that one)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRZOO_SHARED", REPO.parent / "shared")).resolve()


def cache_files(cache: Path) -> list[Path]:
    """Files under the cache's verified folders (not partials or locks)."""
    return sorted(p.relative_to(cache) for sub in ("models", "datasets")
                  if (cache / sub).is_dir() for p in (cache / sub).rglob("*") if p.is_file())
