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

OneDrive
    Personal share links ``1drv.ms/u/s!TOKEN`` (one file each) become
    ``api.onedrive.com/v1.0/shares/u!ENCODED/root/content``, where ``ENCODED`` is the
    share link (as given) in unpadded base64url (the documented encoding of a sharing URL); the API
    answers with a redirect to the file. Folder links (``1drv.ms/f/``) stay manual, as
    does an API that asks for a sign-in (HTTP 401/403: the transfer moves on with the reason).

Mega
    Public file links ``mega.nz/file/HANDLE#KEY`` (and the older ``mega.nz/#!HANDLE!KEY``)
    are fetched by :func:`mega_fetch`: one API request (``{"a": "g", "g": 1, "p": HANDLE}``)
    answers the file's size and a temporary download URL; the bytes there are AES-128-CTR
    encrypted with the key in the link (the 256-bit link key folded to 128 bits, the
    counter starting from its 64-bit nonce) and are decrypted while they stream to a file.
    The API's size must be the record's before a byte is read, at most that many bytes are
    read, every call has ``SRZOO_TIMEOUT``, and the caller still checks the sha256 of the
    result (Mega's own MAC adds nothing to that). Mega's answers that mean no (an error
    code such as -9 "not found", -16 "blocked", -17/-18 quota, HTTP 509 "bandwidth
    exceeded") are one line each. AES comes from the ``cryptography`` package
    (``pip install 'srzoo[mega]'``). Folder links stay manual.

MediaFire
    A file link ``mediafire.com/file/KEY/NAME/file`` opens a page whose download button
    holds the file's link (``download*.mediafire.com``, https only; newer pages give it
    base64-encoded in ``data-scrambled-url``). :func:`mediafire_fetch` reads at most 1 MiB
    of that page, takes the link and streams the file. No maintained library does this
    (the packages on PyPI are unmaintained one-file scrapers), hence the few lines here.
    Folder links stay manual.

pCloud
    Public links ``u.pcloud.link`` (US API) and ``e.pcloud.link``/``e1.pcloud.link`` (EU)
    ``/publink/show?code=CODE``: ``showpublink`` says what the link is (a folder link is
    searched for the one file of the record's size), ``getpublinkdownload`` gives content
    hosts and a path, and the file is streamed from there. pCloud's refusals (deleted link,
    too many downloads) are one line with its message.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from srzoo import config
from srzoo.errors import DownloadError, SrzooError

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


#: OneDrive's shares API (anonymous access to a shared item)
ONEDRIVE_SHARES = "https://api.onedrive.com/v1.0/shares"
_ONEDRIVE_FILE = re.compile(r"^/u/s![A-Za-z0-9_-]{10,200}$")


def onedrive_share(url: str) -> str | None:
    """The share link as given (query kept, fragment dropped) when ``url`` is a OneDrive
    link to one file (``1drv.ms/u/s!...``); None otherwise."""
    try:
        u = urlparse(url)
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or (u.hostname or "").lower() != "1drv.ms":
        return None
    if not _ONEDRIVE_FILE.match(u.path):
        return None
    return f"https://1drv.ms{u.path}" + (f"?{u.query}" if u.query else "")


def onedrive_download_url(share: str) -> str:
    token = base64.urlsafe_b64encode(share.encode()).decode().rstrip("=")
    return f"{ONEDRIVE_SHARES}/u!{token}/root/content"


def direct_url(url: str) -> str | None:
    """The link a script can fetch for the share link ``url``; None when srzoo has no route."""
    fid = gdrive_id(url)
    if fid is not None:
        return gdrive_download_url(fid)
    share = onedrive_share(url)
    if share is not None:
        return onedrive_download_url(share)
    return None


# ---- Mega --------------------------------------------------------------------------------------
#: Mega's API endpoint (one POST per file)
MEGA_API = "https://g.api.mega.co.nz/cs"
MEGA_HOSTS = frozenset({"mega.nz", "mega.co.nz", "www.mega.nz"})
_MEGA_HANDLE = re.compile(r"^[A-Za-z0-9_-]{8}$")
_MEGA_KEY = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url without padding
_MEGA_ERRORS = {-2: "bad request", -3: "try again later", -4: "rate limited", -6: "too many connections",
                -8: "link expired", -9: "file not found", -11: "access denied", -13: "file incomplete",
                -16: "file blocked (taken down)", -17: "transfer quota exceeded", -18: "temporarily unavailable"}


def mega_link(url: str) -> tuple[str, bytes] | None:
    """``(handle, 32-byte link key)`` of a public Mega file link; None for anything else."""
    try:
        u = urlparse(url)
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or (u.hostname or "").lower() not in MEGA_HOSTS:
        return None
    if u.path.startswith("/file/"):
        handle, key = u.path[len("/file/"):].strip("/"), u.fragment
    elif u.path in ("", "/") and u.fragment.startswith("!"):
        parts = u.fragment[1:].split("!")
        if len(parts) != 2:
            return None
        handle, key = parts
    else:
        return None
    if not _MEGA_HANDLE.match(handle) or not _MEGA_KEY.match(key):
        return None
    raw = base64.urlsafe_b64decode(key + "=")
    return (handle, raw) if len(raw) == 32 else None


def mega_key(link_key: bytes) -> tuple[bytes, bytes]:
    """The AES-128 key and the 8-byte CTR nonce of a file's 32-byte link key:
    words ``a0..a7`` give the key ``(a0^a4, a1^a5, a2^a6, a3^a7)`` and the nonce ``(a4, a5)``."""
    a = struct.unpack(">8I", link_key)
    return struct.pack(">4I", a[0] ^ a[4], a[1] ^ a[5], a[2] ^ a[6], a[3] ^ a[7]), struct.pack(">2I", a[4], a[5])


def _aes_ctr(key: bytes, nonce: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise SrzooError("downloading from Mega needs the cryptography package: pip install 'srzoo[mega]' "
                         "(or download the file by hand and run `srzoo fetch NAME --from FILE`)") from None
    return Cipher(algorithms.AES(key), modes.CTR(nonce + b"\0" * 8)).decryptor()


def _mega_error(code: Any, url: str) -> DownloadError:
    what = _MEGA_ERRORS.get(code, "unknown error") if isinstance(code, int) else "unexpected answer"
    return DownloadError(f"{url}: Mega refused the file ({what}, {str(code)[:40]})")


def mega_fetch(url: str, dest: Path, size: int) -> Path:
    """Download and decrypt the public Mega file ``url`` (``size`` bytes per the record) to
    ``dest``; DownloadError (one line) when Mega says no or sends something else. The
    caller verifies the sha256 and removes ``dest`` on failure."""
    import requests

    link = mega_link(url)
    if link is None:
        raise SrzooError(f"{url} is not a public Mega file link (mega.nz/file/HANDLE#KEY)")
    handle, link_key = link
    key, nonce = mega_key(link_key)
    timeout = float(config.get("SRZOO_TIMEOUT"))
    try:
        r = requests.post(MEGA_API, params={"id": 0}, json=[{"a": "g", "g": 1, "p": handle}], timeout=timeout,
                          allow_redirects=False)
        if r.status_code != 200:
            raise DownloadError(f"{url}: Mega's API answered HTTP {r.status_code}")
        if len(r.content) > 1 << 16:
            raise DownloadError(f"{url}: Mega's API answer is too large ({len(r.content)} bytes)")
        try:
            ans = json.loads(r.content)
        except ValueError:
            raise DownloadError(f"{url}: Mega's API answer is not JSON") from None
        if isinstance(ans, list) and len(ans) == 1:
            ans = ans[0]
        if not isinstance(ans, dict):
            raise _mega_error(ans, url)
        got, where = ans.get("s"), ans.get("g")
        if not isinstance(got, int) or not isinstance(where, str) or urlparse(where).scheme not in ("http", "https"):
            raise _mega_error(ans.get("e", "no size or download link"), url)
        if got != size:
            raise DownloadError(f"{url}: Mega has {got} bytes where the record says {size}: not the same file")
        dec = _aes_ctr(key, nonce)
        _stream(where, dest, size, url, "Mega", dec.update, dec.finalize)
    except requests.RequestException as e:
        raise DownloadError(f"{url}: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from None
    return dest


def _stream(where: str, dest: Path, size: int, url: str, host: str, transform: Any = None, final: Any = None) -> None:
    """GET ``where`` into ``dest``: exactly ``size`` bytes (one more and it stops), each
    chunk through ``transform``; HTTP 509 is the host's bandwidth quota."""
    import requests

    timeout = float(config.get("SRZOO_TIMEOUT"))
    n = 0
    with requests.get(where, stream=True, timeout=timeout, allow_redirects=False) as resp:
        if resp.status_code == 509:
            raise DownloadError(f"{url}: {host}'s transfer quota is exceeded (HTTP 509); try later or "
                                "download it by hand")
        if resp.status_code != 200:
            raise DownloadError(f"{url}: {host}'s download answered HTTP {resp.status_code}")
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if kind == "text/html":
            raise DownloadError(f"{url}: {host} answered a web page (text/html), not the file")
        with open(dest, "wb") as f:
            for chunk in resp.iter_content(1 << 16):
                n += len(chunk)
                if n > size:
                    raise DownloadError(f"{url}: {host} sent more than the record's {size} bytes")
                f.write(transform(chunk) if transform else chunk)
            if final:
                f.write(final())
    if n != size:
        raise DownloadError(f"{url}: {host} sent {n} of {size} bytes")


# ---- MediaFire ----------------------------------------------------------------------------------
_MEDIAFIRE_FILE = re.compile(r"^/file/[a-z0-9]{8,20}/[^/]+(?:/file)?/?$")
_MEDIAFIRE_BUTTON = re.compile(r"<a\b[^>]*\bid=[\"']downloadButton[\"'][^>]*>", re.I)
_ATTR = re.compile(r"""\b(href|data-scrambled-url)\s*=\s*["']([^"']*)["']""", re.I)
_MAX_PAGE = 1 << 20
#: where MediaFire's file pages are read from (the link's path is kept)
MEDIAFIRE_PAGES = "https://www.mediafire.com"
#: what a download link on the page must look like
MEDIAFIRE_DOWNLOAD = re.compile(r"^https://download\d*\.mediafire\.com/[^\s]+$")


def mediafire_file(url: str) -> bool:
    """True for a MediaFire link to one file (``mediafire.com/file/KEY/NAME/file``)."""
    try:
        u = urlparse(url)
    except ValueError:
        return False
    return (u.scheme in ("http", "https") and (u.hostname or "").lower() in ("www.mediafire.com", "mediafire.com")
            and bool(_MEDIAFIRE_FILE.match(u.path)))


def mediafire_link(page: str) -> str | None:
    """The file's download link on a MediaFire file page: the ``downloadButton`` anchor's
    ``href``, or its base64 ``data-scrambled-url`` where the href is a script; only an
    https link on a ``download*.mediafire.com`` host is accepted."""
    m = _MEDIAFIRE_BUTTON.search(page)
    if not m:
        return None
    attrs = {k.lower(): v for k, v in _ATTR.findall(m.group(0))}
    cands = [attrs.get("href", "")]
    if attrs.get("data-scrambled-url"):
        try:
            cands.insert(0, base64.b64decode(attrs["data-scrambled-url"], validate=True).decode())
        except ValueError:
            pass
    for c in cands:
        c = c.replace("&amp;", "&")
        if MEDIAFIRE_DOWNLOAD.match(c):
            return c
    return None


def mediafire_fetch(url: str, dest: Path, size: int) -> Path:
    """Read the MediaFire file page (at most 1 MiB), take its download link
    (:func:`mediafire_link`) and stream the file to ``dest``; DownloadError (one line)
    when the page has no link (removed file, a captcha) or the host refuses."""
    import requests

    timeout = float(config.get("SRZOO_TIMEOUT"))
    try:
        page_url = MEDIAFIRE_PAGES + urlparse(url).path
        with requests.get(page_url, stream=True, timeout=timeout) as r:
            if r.status_code != 200:
                raise DownloadError(f"{url}: MediaFire answered HTTP {r.status_code}")
            page = r.raw.read(_MAX_PAGE + 1, decode_content=True)
        if len(page) > _MAX_PAGE:
            raise DownloadError(f"{url}: MediaFire's page is larger than {_MAX_PAGE} bytes; not read")
        where = mediafire_link(page.decode("utf-8", "replace"))
        if where is None:
            raise DownloadError(f"{url}: MediaFire's page has no download link (file removed, or a captcha)")
        _stream(where, dest, size, url, "MediaFire")
    except requests.RequestException as e:
        raise DownloadError(f"{url}: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from None
    return dest


# ---- pCloud -------------------------------------------------------------------------------------
#: pCloud's API, by the region of the link's host (u.pcloud.link: US, e*.pcloud.link: EU)
PCLOUD_API = {"us": "https://api.pcloud.com", "eu": "https://eapi.pcloud.com"}
_PCLOUD_HOSTS = {"u.pcloud.link": "us", "e.pcloud.link": "eu", "e1.pcloud.link": "eu"}
_PCLOUD_CODE = re.compile(r"^[A-Za-z0-9]{20,60}$")
_PCLOUD_MAX_ENTRIES = 10000


def pcloud_link(url: str) -> tuple[str, str] | None:
    """``(region, code)`` of a pCloud public link (``*.pcloud.link/publink/show?code=``)."""
    try:
        u = urlparse(url)
    except ValueError:
        return None
    region = _PCLOUD_HOSTS.get((u.hostname or "").lower())
    if u.scheme not in ("http", "https") or region is None or u.path != "/publink/show":
        return None
    code = (parse_qs(u.query).get("code") or [""])[0]
    return (region, code) if _PCLOUD_CODE.match(code) else None


def _pcloud_call(url: str, api: str, method: str, **params: Any) -> dict[str, Any]:
    import requests

    r = requests.get(f"{api}/{method}", params=params, timeout=float(config.get("SRZOO_TIMEOUT")),
                     allow_redirects=False)
    if r.status_code != 200 or len(r.content) > 8 << 20:
        raise DownloadError(f"{url}: pCloud's API answered HTTP {r.status_code} ({len(r.content)} bytes)")
    try:
        ans = json.loads(r.content)
    except ValueError:
        raise DownloadError(f"{url}: pCloud's API answer is not JSON") from None
    if not isinstance(ans, dict) or ans.get("result") != 0:
        err = ans.get("error", "unknown error") if isinstance(ans, dict) else "unexpected answer"
        code = ans.get("result") if isinstance(ans, dict) else "?"
        raise DownloadError(f"{url}: pCloud refused the link ({str(err)[:120]}, {code})")
    return ans


def _pcloud_pick(url: str, meta: Any, size: int) -> int | None:
    """None for a file link; for a folder link the file id of its file of ``size`` bytes
    (walked breadth first, at most 10000 entries)."""
    if not isinstance(meta, dict):
        raise DownloadError(f"{url}: pCloud's answer has no metadata")
    if not meta.get("isfolder"):
        return None
    queue, seen = [meta], 0
    while queue:
        for e in queue.pop(0).get("contents") or []:
            seen += 1
            if seen > _PCLOUD_MAX_ENTRIES or not isinstance(e, dict):
                raise DownloadError(f"{url}: pCloud folder too large or malformed")
            if e.get("isfolder"):
                queue.append(e)
            elif e.get("size") == size and isinstance(e.get("fileid"), int):
                return int(e["fileid"])
    raise DownloadError(f"{url}: the pCloud folder holds no file of {size} bytes (the record's size)")


def pcloud_fetch(url: str, dest: Path, size: int) -> Path:
    """A pCloud public link: ``showpublink`` (a file, or a folder in which the file of the
    record's size is taken), ``getpublinkdownload`` (content hosts and path), then the
    bytes over https; the caller verifies the sha256."""
    import requests

    link = pcloud_link(url)
    if link is None:
        raise SrzooError(f"{url} is not a pCloud public link (*.pcloud.link/publink/show?code=...)")
    region, code = link
    api = PCLOUD_API[region]
    try:
        meta = _pcloud_call(url, api, "showpublink", code=code).get("metadata")
        fileid = _pcloud_pick(url, meta, size)
        if fileid is None and meta.get("size") != size:
            raise DownloadError(f"{url}: pCloud has {meta.get('size')} bytes where the record says {size}")
        extra = {"fileid": fileid} if fileid is not None else {}
        ans = _pcloud_call(url, api, "getpublinkdownload", code=code, **extra)
        hosts_, path = ans.get("hosts"), ans.get("path")
        if not (isinstance(hosts_, list) and hosts_ and isinstance(hosts_[0], str) and isinstance(path, str)
                and re.match(r"^[A-Za-z0-9.-]+(:\d+)?$", hosts_[0]) and path.startswith("/")):
            raise DownloadError(f"{url}: pCloud's download answer has no host and path")
        _stream(f"{PCLOUD_SCHEME}://{hosts_[0]}{path}", dest, size, url, "pCloud")
    except requests.RequestException as e:
        raise DownloadError(f"{url}: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from None
    return dest


#: the scheme of pCloud's content hosts
PCLOUD_SCHEME = "https"


def scripted(url: str) -> bool:
    """True when :func:`fetch_scripted` can download ``url`` (a host with its own protocol)."""
    return mega_link(url) is not None or mediafire_file(url) or pcloud_link(url) is not None


def fetch_scripted(url: str, dest: Path, size: int) -> Path:
    """Fetch ``url`` of a host with its own protocol (Mega, MediaFire) to ``dest``; see
    :func:`scripted`. The caller verifies the sha256."""
    if mediafire_file(url):
        return mediafire_fetch(url, dest, size)
    if pcloud_link(url) is not None:
        return pcloud_fetch(url, dest, size)
    return mega_fetch(url, dest, size)


def host_name(url: str) -> str | None:
    """Which supported host ``url`` is on (``google-drive``, ``mega``), for listings; None otherwise."""
    if gdrive_id(url):
        return "google-drive"
    if onedrive_share(url):
        return "onedrive"
    if mediafire_file(url):
        return "mediafire"
    if pcloud_link(url):
        return "pcloud"
    return "mega" if mega_link(url) else None


__all__ = ["GDRIVE_DOWNLOAD", "MEGA_API", "ONEDRIVE_SHARES", "direct_url", "fetch_scripted",
           "gdrive_download_url", "gdrive_id", "host_name", "mediafire_fetch", "mediafire_file",
           "mediafire_link", "mega_fetch", "mega_key", "mega_link", "onedrive_download_url",
           "onedrive_share", "pcloud_fetch", "pcloud_link", "scripted"]
