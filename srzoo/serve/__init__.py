"""serve: ``srzoo serve``, a local web page and HTTP API over :func:`srzoo.upscale`.

The top layer, beside :mod:`srzoo.cli`: it may import every layer below
(jobs, runtime, hub, config, errors); nothing in srzoo imports it. Modules:

* :mod:`.jobs`   -- uploads checked (size, pixels before decoding, model, scale),
  a bounded queue, a worker pool running the shared :class:`~srzoo.Upscaler`,
  results kept in a server-owned folder for a retention time. No web framework.
* :mod:`.app`    -- the ASGI app (FastAPI): the API, token check, upload size
  and slow-upload limits, the static page in ``static/``.
* :mod:`.server` -- binding rules (loopback unless a token is set) and uvicorn.

The web stack is the optional extra ``srzoo[serve]`` (FastAPI, uvicorn,
python-multipart); :func:`require_extra` names it when it is missing.
"""

from __future__ import annotations

import importlib

from srzoo.errors import SrzooError

#: import name -> distribution name of what ``srzoo[serve]`` installs
EXTRA = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"}


def require_extra() -> None:
    """Raise one line naming ``srzoo[serve]`` when a package of it is missing."""
    missing = []
    for mod, dist in EXTRA.items():
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(dist)
    if missing:
        raise SrzooError(f"srzoo serve needs {', '.join(missing)}: pip install 'srzoo[serve]'")


__all__ = ["EXTRA", "require_extra"]
