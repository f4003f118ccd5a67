"""Share links srzoo follows (srzoo.hub.hosts), and the download through them against a
local stand-in for Google Drive that speaks its protocol: the share page, the
large-file confirmation page, the ``drive.usercontent.google.com/download`` endpoint
with its redirect chain, and the quota page that must be refused. Nothing reaches
the internet: the endpoint constant is pointed at the stand-in (the one thing
changed), everything else (catalogue, download, verification, cache) is the real code.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from suite import cache_files
from httpmirror import QuietHTTPServer
from srzoo.cli import main
from srzoo.hub import hosts
from srzoo.hub.catalog import records, store

ANIME_PTH = ("esrgan/realesr-animevideov3.pth", 2334339,
             "4e1e09ba96d08bd4b8455e8897c3242a3501e3766f359941ea894122e158a932")
GOOD_ID = "1ZhkdyPX3hoK_8Mbl6l8fQntkkRSWUl9-"
QUOTA_ID = "12ek1vitEporWc5qqaYo6AMy0-RYlRqu8"
MISSING_ID = "1cdGyJewgcY8DwT-D5JrqDHxlL_ZDw3qH"


# ---- link shapes (the ones the pinned catalogue uses) ----------------------------------------
@pytest.mark.parametrize("url,fid", [
    (f"https://drive.google.com/file/d/{GOOD_ID}/view?usp=drive_link", GOOD_ID),
    (f"https://drive.google.com/file/d/{GOOD_ID}/view", GOOD_ID),
    (f"https://drive.google.com/file/d/{GOOD_ID}", GOOD_ID),
    (f"https://drive.google.com/open?id={GOOD_ID}", GOOD_ID),
    (f"https://drive.google.com/u/1/uc?id={GOOD_ID}&export=download", GOOD_ID),
    (f"https://drive.google.com/uc?export=download&confirm=1&id={GOOD_ID}", GOOD_ID),
    (f"https://docs.google.com/uc?id={GOOD_ID}", GOOD_ID),
    (f"https://drive.google.com/drive/folders/{GOOD_ID}?usp=drive_link", None),  # a folder: no single file
    (f"https://drive.google.com/drive/u/1/folders/{GOOD_ID}", None),
    ("https://drive.google.com/file/d/short/view", None),                       # not an id
    ("https://drive.google.com/file/d/..%2F..%2Fetc%2Fpasswd-xxxxxxxxxxxxx/view", None),
    (f"https://drive.google.com.evil.example/file/d/{GOOD_ID}/view", None),     # not Google's host
    (f"ftp://drive.google.com/file/d/{GOOD_ID}/view", None),
    ("https://mega.nz/file/abc#key", None),
    ("http://[::1", None),                                                       # unparsable
])
def test_gdrive_ids(url, fid):
    assert hosts.gdrive_id(url) == fid
    direct = hosts.direct_url(url)
    if fid is None:
        assert direct is None
    else:
        assert direct == f"https://drive.usercontent.google.com/download?id={fid}&export=download&confirm=t"


def test_catalogue_resources_with_drive_links_are_downloadable():
    file_link = records.Resource("pth", "pytorch", 10, "0" * 64,
                                 (f"https://drive.google.com/file/d/{GOOD_ID}/view?usp=sharing",))
    assert file_link.downloadable and file_link.manual_urls == ()
    assert file_link.direct_urls == (hosts.gdrive_download_url(GOOD_ID),)
    assert file_link.artifact("4x-x").file == "4x-x.pth"  # no file name in a Drive link
    folder = records.Resource("pth", "pytorch", 10, "0" * 64,
                              (f"https://drive.google.com/drive/folders/{GOOD_ID}",))
    assert not folder.downloadable and folder.manual_urls == folder.urls


# ---- the stand-in ------------------------------------------------------------------------------
CONFIRM_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
                b"<p>Google Drive can't scan this file for viruses.</p><form id=\"download-form\" "
                b"action=\"/download\" method=\"get\"><input type=\"hidden\" name=\"confirm\" value=\"t\">"
                b"</form></body></html>\n")
QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
              b"<p>Too many users have viewed or downloaded this file recently. Please try accessing the "
              b"file again later.</p></body></html>\n")


class _StandIn:
    """A host's stand-in: its request handler served on a loopback port in a thread."""

    def _serve(self, handler: type) -> None:
        self.server = QuietHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DriveStandIn(_StandIn):
    """``/download?id=..&export=download&confirm=t`` -> 303 -> 302 -> the bytes; without
    ``confirm=t`` the confirmation page; the quota id gets the quota page (200, HTML); an
    unknown id a 404 page. Logs every request path."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.log: list[str] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8",
                      **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                stand_in.log.append(self.path)
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                if u.path == "/download":
                    fid = q.get("id", "")
                    if fid == QUOTA_ID:
                        return self._send(200, QUOTA_PAGE)
                    if fid not in stand_in.files:
                        return self._send(404, b"<html><body>Not Found</body></html>")
                    if q.get("confirm") != "t" or q.get("export") != "download":
                        return self._send(200, CONFIRM_PAGE)
                    return self._send(303, Location=f"/hop?id={fid}")
                if u.path == "/hop":
                    return self._send(302, Location=f"/blob/{q.get('id', '')}/content")
                if u.path.startswith("/blob/"):
                    fid = u.path.split("/")[2]
                    data = stand_in.files[fid].read_bytes()
                    return self._send(200, data, "application/octet-stream",
                                      **{"Content-Disposition": 'attachment; filename="model.pth"'})
                return self._send(404)

        self._serve(Handler)


@pytest.fixture
def drive(shared_dir, srzoo_env, monkeypatch):
    s = DriveStandIn({GOOD_ID: shared_dir / "models" / ANIME_PTH[0]})
    monkeypatch.setattr(hosts, "GDRIVE_DOWNLOAD", s.url + "/download")
    monkeypatch.setenv("SRZOO_MIRROR", "")          # no mirror: the record's own link is the source
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    yield s
    s.close()


def _catalogue(shared_dir: Path, recs: dict) -> None:
    arch = json.loads((shared_dir / "openmodeldb" / "architectures.json").read_text())
    base = json.loads((shared_dir / "openmodeldb" / "4x-realesr-animevideo-v3.json").read_text())
    models = {}
    for rid, url in recs.items():
        r = dict(base)
        r["resources"] = [{"platform": "pytorch", "type": "pth", "size": ANIME_PTH[1], "sha256": ANIME_PTH[2],
                           "urls": [url]}]
        models[rid] = r
    store.install(store.serialise("c" * 40, models, arch), "c" * 40)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_drive_file_downloads_through_confirmation_and_redirects(drive, shared_dir, srzoo_env, capsys):
    _catalogue(shared_dir, {"4x-srzoo-drive": f"https://drive.google.com/file/d/{GOOD_ID}/view?usp=sharing"})
    code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-drive", "-q")
    assert code == 0, err
    target = srzoo_env / "models/omdb/4x-srzoo-drive/4x-srzoo-drive.pth"
    assert out.strip() == str(target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ANIME_PTH[2]
    # straight to the confirmed download, then the redirect chain; never the confirmation page
    assert drive.log[:3] == [f"/download?id={GOOD_ID}&export=download&confirm=t", f"/hop?id={GOOD_ID}",
                             f"/blob/{GOOD_ID}/content"]


def test_drive_quota_page_is_refused_and_nothing_is_kept(drive, shared_dir, srzoo_env, capsys):
    _catalogue(shared_dir, {"4x-srzoo-quota": f"https://drive.google.com/open?id={QUOTA_ID}",
                            "4x-srzoo-gone": f"https://drive.google.com/file/d/{MISSING_ID}/view"})
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-quota", "-q")
    assert code == 1 and "Traceback" not in err
    # the HTML page announced a length that is not the file's: refused before its body is read
    assert "text/html" in err and str(ANIME_PTH[1]) in err and QUOTA_ID in err
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-gone", "-q")
    assert code == 1 and "404" in err and "Traceback" not in err
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []
    assert not any((srzoo_env / ".incomplete").glob("*.part"))


# ---- Mega ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("url,ok", [
    ("https://mega.nz/file/9dJFjYrT#LY4Op8myZGJsh6ytUvF6ITVGXpx8XODN_AG-kzvWg4Y", True),
    ("https://mega.nz/#!uhAVEaAA!qfwIQ44Ba3rXMAb2-M3aM3zFBCwzmyQ64IO_0O-csJE", True),
    ("https://mega.nz/folder/5UAlQCRJ#2Bj1lq8PYeB3P9k5UKSvkQ", False),              # a folder
    ("https://mega.nz/folder/IdFAnAoD#ptHOPvdfl-jvHzCvcNmicw/file/ZMViFR7b", False),  # a file in a folder
    ("https://mega.nz/file/9dJFjYrT#short", False),
    ("https://mega.nz/file/9dJFjYrT", False),                                        # no key
    ("https://mega.nz.evil.example/file/9dJFjYrT#LY4Op8myZGJsh6ytUvF6ITVGXpx8XODN_AG-kzvWg4Y", False),
])
def test_mega_links(url, ok):
    assert (hosts.mega_link(url) is not None) is ok
    assert hosts.scripted(url) is ok


def test_mega_key_folding():
    """Words a0..a7 of the link key: AES key (a0^a4 .. a3^a7), CTR nonce (a4, a5)."""
    words = [0x01020304, 0x05060708, 0x090A0B0C, 0x0D0E0F10, 0xF0000000, 0x0F000000, 0x00F00000, 0x000F0000]
    key, nonce = hosts.mega_key(b"".join(w.to_bytes(4, "big") for w in words))
    assert key.hex() == "f10203040a06070809fa0b0c0d010f10"
    assert nonce.hex() == "f00000000f000000"


class MegaStandIn(_StandIn):
    """Mega's API (``POST /cs`` with ``[{"a": "g", "g": 1, "p": HANDLE}]``) and its download
    servers: the file AES-128-CTR encrypted with the file key, in chunks of odd sizes; error
    codes for unknown and blocked handles, HTTP 509 for an exhausted transfer quota."""

    def __init__(self, files: dict[str, tuple[bytes, bytes, bytes]], errors: dict[str, int],
                 over_quota: set[str]) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self.log: list[str] = []
        self.blobs = {}
        for handle, (data, key, nonce) in files.items():
            enc = Cipher(algorithms.AES(key), modes.CTR(nonce + b"\0" * 8)).encryptor()
            self.blobs[handle] = enc.update(data) + enc.finalize()
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                stand_in.log.append("POST " + self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if urlparse(self.path).path != "/cs" or body[0].get("a") != "g" or body[0].get("g") != 1:
                    return self._send(200, b"[-2]")
                h = body[0].get("p")
                if h == "NotJson1":
                    return self._send(200, b"<html>maintenance</html>", "text/html")
                if h == "FileUrl1":  # a download link that is not http(s)
                    return self._send(200, json.dumps([{"s": 10, "g": "file:///etc/passwd"}]).encode())
                if h == "BigSize1":  # not the record's size: refused before any byte is read
                    return self._send(200, json.dumps([{"s": 10 ** 12, "g": f"{stand_in.url}/dl/x"}]).encode())
                if h in errors:
                    return self._send(200, json.dumps([errors[h]]).encode())
                if h not in stand_in.blobs:
                    return self._send(200, b"[-9]")
                ans = {"s": len(stand_in.blobs[h]), "at": "ignored", "msd": 1, "g": f"{stand_in.url}/dl/{h}"}
                return self._send(200, json.dumps([ans]).encode())

            def do_GET(self) -> None:  # noqa: N802
                stand_in.log.append("GET " + self.path)
                h = self.path.rsplit("/", 1)[-1]
                if h in over_quota:
                    return self._send(509, b"", "text/plain")
                blob = stand_in.blobs[h]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                for i, n in enumerate(range(0, len(blob), 7777)):  # chunks not multiples of 16 bytes
                    self.wfile.write(blob[n:n + 7777])

        self._serve(Handler)


def _mega_url(handle: str, key: bytes, nonce: bytes, mac: bytes) -> str:
    """A public link as Mega writes it: the key folded with nonce and MAC, then both."""
    k = [int.from_bytes(key[i:i + 4], "big") for i in range(0, 16, 4)]
    t = [int.from_bytes((nonce + mac)[i:i + 4], "big") for i in range(0, 16, 4)]
    words = [k[i] ^ t[i] for i in range(4)] + t
    import base64

    raw = b"".join(w.to_bytes(4, "big") for w in words)
    return f"https://mega.nz/file/{handle}#{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


@pytest.fixture
def mega(shared_dir, srzoo_env, monkeypatch):
    pytest.importorskip("cryptography", reason="Mega downloads need the cryptography package (srzoo[mega])")
    data = (shared_dir / "models" / ANIME_PTH[0]).read_bytes()
    key, nonce, mac = bytes(range(16, 32)), bytes.fromhex("a1b2c3d4e5f60718"), bytes(8)
    s = MegaStandIn({"AbCd1234": (data, key, nonce), "Quota999": (data, key, nonce),
                     "Wrong123": (data[:-1] + bytes([data[-1] ^ 1]), key, nonce)},
                    errors={"Blocked1": -16}, over_quota={"Quota999"})
    s.link = lambda h: _mega_url(h, key, nonce, mac)
    monkeypatch.setattr(hosts, "MEGA_API", s.url + "/cs")
    monkeypatch.setenv("SRZOO_MIRROR", "")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    yield s
    s.close()


def test_mega_file_is_fetched_decrypted_and_verified(mega, shared_dir, srzoo_env, capsys):
    _catalogue(shared_dir, {"4x-srzoo-mega": mega.link("AbCd1234")})
    code, out, err = run(capsys, "list", "--catalog", "openmodeldb", "--json")
    assert json.loads(out)[0]["downloadable"] is True
    code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-mega", "-q")
    assert code == 0, err
    target = srzoo_env / "models/omdb/4x-srzoo-mega/4x-srzoo-mega.pth"
    assert out.strip() == str(target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ANIME_PTH[2]
    assert mega.log == ["POST /cs?id=0", "GET /dl/AbCd1234"]
    assert not any((srzoo_env / ".incomplete").glob("*"))


@pytest.mark.parametrize("handle,says", [
    ("Blocked1", "file blocked"), ("Gone5678", "file not found"), ("Quota999", "HTTP 509"),
    ("Wrong123", "sha256"),   # the right size, other bytes: the record's sha256 refuses it
    ("NotJson1", "not JSON"), ("FileUrl1", "no size or download link"), ("BigSize1", "not the same file"),
])
def test_mega_refusals_are_one_line_and_keep_nothing(mega, shared_dir, srzoo_env, capsys, handle, says):
    _catalogue(shared_dir, {"4x-srzoo-mega": mega.link(handle)})
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-mega", "-q")
    assert code == 1 and says in err and err.count("\n") == 1 and "Traceback" not in err
    if handle in ("FileUrl1", "BigSize1"):
        assert not any(p.startswith("GET") for p in mega.log)  # nothing was downloaded
    assert "--from FILE" in err  # the manual route is still named
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []
    assert not any((srzoo_env / ".incomplete").glob("*"))


def test_mega_wrong_key_gives_other_bytes_and_is_refused(mega, shared_dir, srzoo_env, capsys):
    """A link whose key is not the file's decrypts to noise: refused by the sha256."""
    good = mega.link("AbCd1234")
    bad = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    _catalogue(shared_dir, {"4x-srzoo-mega": bad})
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-mega", "-q")
    assert code == 1 and "sha256" in err


# ---- OneDrive -----------------------------------------------------------------------------------
ONEDRIVE_LINK = "https://1drv.ms/u/s!Aip-EMByJHY27UIFr1mk87zFytap?e=SSxKaV"


@pytest.mark.parametrize("url,ok", [
    (ONEDRIVE_LINK, True),
    ("https://1drv.ms/u/s!AiWox1lAWLoThANuXjxIR-hqA6os", True),
    ("https://1drv.ms/f/s!AiWox1lAWLoThANuXjxIR-hqA6os", False),       # a folder
    ("https://1drv.ms.evil.example/u/s!AiWox1lAWLoThANuXjxIR-hqA6os", False),
    ("https://1drv.ms/u/s!../../x", False),
])
def test_onedrive_links(url, ok):
    assert (hosts.direct_url(url) is not None) is ok
    if ok:
        assert hosts.direct_url(url).startswith("https://api.onedrive.com/v1.0/shares/u!")


class OneDriveStandIn(_StandIn):
    """The shares API: ``/shares/u!B64/root/content`` decodes the share link (unpadded
    base64url) and, for a link it knows, redirects (302) to a download host that serves the
    bytes; a link it does not know gets 401 with Microsoft's JSON error (anonymous access
    refused)."""

    def __init__(self, files: dict[str, Path]) -> None:
        import base64

        self.log: list[str] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", ctype: str = "application/json", **headers: str):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                stand_in.log.append(self.path)
                parts = self.path.split("/")
                if self.path.startswith("/shares/u!") and self.path.endswith("/root/content"):
                    token = parts[2][2:]
                    share = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
                    if share in files:
                        return self._send(302, Location=f"/dl/{len(stand_in.log)}/{files[share].name}")
                    return self._send(401, b'{"error":{"code":"unauthenticated","message":"Must be authenticated"}}')
                if self.path.startswith("/dl/"):
                    return self._send(200, next(iter(files.values())).read_bytes(), "application/octet-stream")
                return self._send(404)

        self._serve(Handler)


@pytest.fixture
def onedrive(shared_dir, srzoo_env, monkeypatch):
    s = OneDriveStandIn({ONEDRIVE_LINK: shared_dir / "models" / ANIME_PTH[0]})
    monkeypatch.setattr(hosts, "ONEDRIVE_SHARES", s.url + "/shares")
    monkeypatch.setenv("SRZOO_MIRROR", "")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    yield s
    s.close()


def test_onedrive_file_downloads_through_the_shares_api(onedrive, shared_dir, srzoo_env, capsys):
    _catalogue(shared_dir, {"4x-srzoo-onedrive": ONEDRIVE_LINK,
                            "4x-srzoo-private": "https://1drv.ms/u/s!AiWox1lAWLoThANuXjxIR-hqA6os"})
    code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-onedrive", "-q")
    assert code == 0, err
    target = srzoo_env / "models/omdb/4x-srzoo-onedrive/4x-srzoo-onedrive.pth"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ANIME_PTH[2]
    # the share link travelled whole (query included), encoded, and the redirect was followed
    assert onedrive.log[0] == ("/shares/u!aHR0cHM6Ly8xZHJ2Lm1zL3UvcyFBaXAtRU1CeUpIWTI3VUlGcjFtazg3ekZ5dGFwP2U9U1N4S2FW"
                               "/root/content")
    assert onedrive.log[1].startswith("/dl/")
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-private", "-q")
    assert code == 1 and "401" in err and "Traceback" not in err and err.count("\n") == 1
    assert [p for p in cache_files(srzoo_env) if p.parts[2] == "4x-srzoo-private"] == []


# ---- MediaFire ----------------------------------------------------------------------------------
MF_LINK = "https://www.mediafire.com/file/py46fnq12hhs5sz/1xSkinContrast-High-SuperUltraCompact.pth/file"


@pytest.mark.parametrize("url,ok", [
    (MF_LINK, True),
    ("http://www.mediafire.com/file/w3jujtm752hvdj1/Manga109Attempt.pth.zip/file", True),
    ("https://www.mediafire.com/folder/gk7f61e2kut0z/sudo_RealESRGAN2x", False),
    ("https://www.mediafire.com.evil.example/file/py46fnq12hhs5sz/x.pth/file", False),
])
def test_mediafire_links(url, ok):
    assert hosts.mediafire_file(url) is ok and hosts.scripted(url) is ok


def test_mediafire_page_link_only_to_mediafire_downloads():
    page = '<a class="input popsok" href="%s" id="downloadButton" rel="nofollow">Download</a>'
    assert hosts.mediafire_link(page % "https://download1234.mediafire.com/a/b/x.pth") == \
        "https://download1234.mediafire.com/a/b/x.pth"
    assert hosts.mediafire_link(page % "https://evil.example/x.pth") is None
    assert hosts.mediafire_link(page % "http://download1.mediafire.com/x.pth") is None  # not https
    assert hosts.mediafire_link("<html>no button</html>") is None


class MediaFireStandIn(_StandIn):
    """File pages at ``/file/KEY/NAME/file``: the download button (plain href, or a script
    href with the link base64 in ``data-scrambled-url``) to ``/dl/KEY/NAME``; a removed file's
    page has no button; one key's download serves an HTML page."""

    def __init__(self, data: bytes, scrambled: set[str], removed: set[str], html_download: set[str]) -> None:
        import base64

        self.log: list[str] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                stand_in.log.append(self.path)
                parts = self.path.split("/")
                if parts[1] == "file":
                    key, name = parts[2], parts[3]
                    if key == "hugepage0001":  # larger than srzoo reads
                        return self._send(200, b"<html>" + b"x" * (1 << 20) + b"</html>", "text/html")
                    if key in removed:
                        return self._send(200, b"<html><body>Invalid or Deleted File.</body></html>", "text/html")
                    link = f"{stand_in.url}/dl/{key}/{name}"
                    if key in scrambled:
                        enc = base64.b64encode(link.encode()).decode()
                        button = f'<a href="javascript:void(0)" data-scrambled-url="{enc}" id="downloadButton">'
                    else:
                        button = f'<a class="input popsok" href="{link}" id="downloadButton" rel="nofollow">'
                    page = f"<html><body><div>{'x' * 5000}</div>{button}Download (2.23MB)</a></body></html>"
                    return self._send(200, page.encode(), "text/html; charset=UTF-8")
                if parts[1] == "dl":
                    if parts[2] in html_download:
                        return self._send(200, b"<html>captcha</html>", "text/html")
                    return self._send(200, data, "application/octet-stream")
                return self._send(404, b"", "text/plain")

        self._serve(Handler)


@pytest.fixture
def mediafire(shared_dir, srzoo_env, monkeypatch):
    import re

    s = MediaFireStandIn((shared_dir / "models" / ANIME_PTH[0]).read_bytes(), scrambled={"scrambled0001"},
                         removed={"removed00001"}, html_download={"htmlpage0001"})
    monkeypatch.setattr(hosts, "MEDIAFIRE_PAGES", s.url)
    monkeypatch.setattr(hosts, "MEDIAFIRE_DOWNLOAD", re.compile("^" + re.escape(s.url) + r"/dl/\S+$"))
    monkeypatch.setenv("SRZOO_MIRROR", "")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    yield s
    s.close()


@pytest.mark.parametrize("key", ["py46fnq12hhs5sz", "scrambled0001"])
def test_mediafire_file_is_read_off_its_page(mediafire, shared_dir, srzoo_env, capsys, key):
    _catalogue(shared_dir, {"4x-srzoo-mf": f"https://www.mediafire.com/file/{key}/model.pth/file"})
    code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-mf", "-q")
    assert code == 0, err
    target = srzoo_env / "models/omdb/4x-srzoo-mf/4x-srzoo-mf.pth"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ANIME_PTH[2]
    assert mediafire.log == [f"/file/{key}/model.pth/file", f"/dl/{key}/model.pth"]


@pytest.mark.parametrize("key,says", [("removed00001", "no download link"), ("htmlpage0001", "web page"),
                                      ("hugepage0001", "larger than")])
def test_mediafire_refusals(mediafire, shared_dir, srzoo_env, capsys, key, says):
    _catalogue(shared_dir, {"4x-srzoo-mf": f"https://www.mediafire.com/file/{key}/model.pth/file"})
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-mf", "-q")
    assert code == 1 and says in err and err.count("\n") == 1 and "--from FILE" in err
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []
    assert not any((srzoo_env / ".incomplete").glob("*"))


# ---- pCloud -------------------------------------------------------------------------------------
PC_FILE = "kZEdNHXZ3bpVwUoge94d9igFWxbjQQrcbpny"
PC_FOLDER = "XZGmsZo1yNrot19O4R5SrPVD1GWpRy1MKX"
PC_DELETED = "kZ7rGRZW2IcOpNMQeXDTTRQ4aPVBFyyJV5X"
PC_EMPTY = "kZYVTSZwycXga7RuRVu8O94iGrqxYCFvsOy"
PC_BADHOST = "kZbadhostbadhostbadhostbadhost01"


@pytest.mark.parametrize("url,want", [
    (f"https://u.pcloud.link/publink/show?code={PC_FILE}", ("us", PC_FILE)),
    (f"https://e.pcloud.link/publink/show?code={PC_FOLDER}", ("eu", PC_FOLDER)),
    (f"https://e1.pcloud.link/publink/show?code={PC_DELETED}", ("eu", PC_DELETED)),
    (f"https://e.pcloud.link/publink/show?code={PC_EMPTY}#returl=https%3A//e.pcloud.link/x&page=login",
     ("eu", PC_EMPTY)),
    ("https://u.pcloud.link/publink/show?code=short", None),
    (f"https://u.pcloud.link.evil.example/publink/show?code={PC_FILE}", None),
])
def test_pcloud_links(url, want):
    assert hosts.pcloud_link(url) == want


class PCloudStandIn(_StandIn):
    """pCloud's API: ``showpublink`` (file or folder metadata), ``getpublinkdownload``
    (hosts and path; with ``fileid`` for a file in a folder), result codes for a deleted
    link, and a content host serving the bytes. Both regions answer here."""

    def __init__(self, data: bytes) -> None:
        size = len(data)
        file_meta = {"isfolder": False, "name": "model.pth", "size": size, "fileid": 11}
        folder_meta = {"isfolder": True, "name": "models", "contents": [
            {"isfolder": False, "name": "readme.txt", "size": 12, "fileid": 21},
            {"isfolder": True, "name": "x4", "contents": [
                {"isfolder": False, "name": "other.pth", "size": size - 1, "fileid": 22},
                {"isfolder": False, "name": "model.pth", "size": size, "fileid": 23}]}]}
        empty_meta = {"isfolder": True, "name": "nothing", "contents": [
            {"isfolder": False, "name": "readme.txt", "size": 12, "fileid": 31}]}
        self.log: list[str] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                stand_in.log.append(self.path)
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                code = q.get("code")
                if u.path.endswith("/showpublink"):
                    meta = {PC_FILE: file_meta, PC_FOLDER: folder_meta, PC_EMPTY: empty_meta,
                            PC_BADHOST: file_meta}.get(code)
                    if meta is None:
                        return self._send(b'{"result": 7002, "error": "This link is deleted by the owner."}')
                    return self._send(json.dumps({"result": 0, "metadata": meta}).encode())
                if u.path.endswith("/getpublinkdownload") and code == PC_BADHOST:  # a host that is no host name
                    return self._send(json.dumps({"result": 0, "path": "/x", "hosts": ["evil.example/y?@"]}).encode())
                if u.path.endswith("/getpublinkdownload"):
                    ok = (code == PC_FILE and "fileid" not in q) or (code == PC_FOLDER and q.get("fileid") == "23")
                    if not ok:
                        return self._send(b'{"result": 7001, "error": "Invalid link \'code\'."}')
                    host = stand_in.url.split("//", 1)[1]
                    return self._send(json.dumps({"result": 0, "path": f"/dAbC/{code}/model.pth",
                                                  "hosts": [host, "c2.example"]}).encode())
                if u.path.startswith("/dAbC/"):
                    return self._send(data, "application/octet-stream")
                self._send(b'{"result": 2000, "error": "unknown method"}')

        self._serve(Handler)


@pytest.fixture
def pcloud(shared_dir, srzoo_env, monkeypatch):
    s = PCloudStandIn((shared_dir / "models" / ANIME_PTH[0]).read_bytes())
    monkeypatch.setattr(hosts, "PCLOUD_API", {"us": s.url + "/us", "eu": s.url + "/eu"})
    monkeypatch.setattr(hosts, "PCLOUD_SCHEME", "http")
    monkeypatch.setenv("SRZOO_MIRROR", "")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "0")
    yield s
    s.close()


@pytest.mark.parametrize("url,calls", [
    (f"https://u.pcloud.link/publink/show?code={PC_FILE}",
     [f"/us/showpublink?code={PC_FILE}", f"/us/getpublinkdownload?code={PC_FILE}", f"/dAbC/{PC_FILE}/model.pth"]),
    (f"https://e.pcloud.link/publink/show?code={PC_FOLDER}",   # the folder's file of the record's size
     [f"/eu/showpublink?code={PC_FOLDER}", f"/eu/getpublinkdownload?code={PC_FOLDER}&fileid=23",
      f"/dAbC/{PC_FOLDER}/model.pth"]),
])
def test_pcloud_file_and_folder_links(pcloud, shared_dir, srzoo_env, capsys, url, calls):
    _catalogue(shared_dir, {"4x-srzoo-pc": url})
    code, out, err = run(capsys, "fetch", "omdb:4x-srzoo-pc", "-q")
    assert code == 0, err
    target = srzoo_env / "models/omdb/4x-srzoo-pc/4x-srzoo-pc.pth"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ANIME_PTH[2]
    assert pcloud.log == calls


@pytest.mark.parametrize("code_,says", [(PC_DELETED, "deleted by the owner"), (PC_EMPTY, "no file of 2334339 bytes"),
                                         (PC_BADHOST, "no host and path")])
def test_pcloud_refusals(pcloud, shared_dir, srzoo_env, capsys, code_, says):
    _catalogue(shared_dir, {"4x-srzoo-pc": f"https://e.pcloud.link/publink/show?code={code_}"})
    code, _, err = run(capsys, "fetch", "omdb:4x-srzoo-pc", "-q")
    assert code == 1 and says in err and err.count("\n") == 1 and "Traceback" not in err
    assert [p for p in cache_files(srzoo_env) if p.parts[:2] == ("models", "omdb")] == []
