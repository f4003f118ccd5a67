"""File hosts whose share links open a web page, and the link a script fetches instead.

A catalogue record's URL may be a share page (Google Drive's ``/file/d/ID/view``)
rather than the file. :func:`direct_url` turns the links srzoo knows how to follow
into a plain HTTPS download that :mod:`srzoo.hub.download` then fetches like any
other source: resumable, time-bounded, and kept only when the size and the record's
sha256 match. A link srzoo has no route for stays a manual download
(``srzoo fetch ID --from FILE``).

Google Drive
    ``drive.google.com/file/d/ID/...``, ``/open?id=ID``, ``/uc?id=ID`` and
    ``docs.google.com/uc?id=ID`` (one file each) become
    ``drive.usercontent.google.com/download?id=ID&export=download&confirm=t``.
    ``confirm=t`` is the answer to Drive's large-file page ("can't scan this file for
    viruses"), so no page is read or parsed: the file comes straight back (after
    redirects). When Drive answers with a page instead (its quota page, "too many
    users have viewed or downloaded this file", or a sign-in page), that answer is an
    HTML document whose length is not the record's size: the transfer refuses it
    before reading the body, and a page that slips through fails the sha256. Folder
    links (``/drive/folders/``) name no single file and stay manual.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlparse

#: where a Google Drive file is downloaded from
GDRIVE_DOWNLOAD = "https://drive.usercontent.google.com/download"
GDRIVE_HOSTS = frozenset({"drive.google.com", "docs.google.com"})
# Drive file ids: URL-safe base64-ish, 25-44 characters today (older ids 28)
_GDRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_FILE_PATH = re.compile(r"^(?:/u/\d+)?/file/d/([^/]+)(?:/.*)?$")
_UC_PATH = re.compile(r"^(?:/u/\d+)?/(?:uc|open)$")


def gdrive_id(url: str) -> str | None:
    """The file id of a Google Drive link to one file; None for anything else (folders)."""
    try:
        u = urlparse(url)
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or (u.hostname or "").lower() not in GDRIVE_HOSTS:
        return None
    m = _FILE_PATH.match(u.path)
    if m:
        fid = m.group(1)
    elif _UC_PATH.match(u.path):
        ids = parse_qs(u.query).get("id") or [""]
        fid = ids[0]
    else:
        return None
    return fid if _GDRIVE_ID.match(fid) else None


def gdrive_download_url(file_id: str) -> str:
    return f"{GDRIVE_DOWNLOAD}?{urlencode({'id': file_id, 'export': 'download', 'confirm': 't'})}"


def direct_url(url: str) -> str | None:
    """The link a script can fetch for the share link ``url``; None when srzoo has no route."""
    fid = gdrive_id(url)
    if fid is not None:
        return gdrive_download_url(fid)
    return None


def host_name(url: str) -> str | None:
    """Which supported host ``url`` is on (``google-drive``), for listings; None otherwise."""
    return "google-drive" if gdrive_id(url) else None


__all__ = ["GDRIVE_DOWNLOAD", "direct_url", "gdrive_download_url", "gdrive_id", "host_name"]
