"""How many OpenModelDB records srzoo can run, by architecture, at one catalogue revision.

    python tools/omdb_coverage.py                      # the pinned catalogue (fetched/cached)
    python tools/omdb_coverage.py --archive REPO.tar.gz --revision COMMIT

``--archive``: a tar.gz of the open-model-database repository at COMMIT (GitHub's
``codeload.github.com/OpenModelDB/open-model-database/tar.gz/COMMIT``, or
``git archive --format=tar.gz --prefix=x/ COMMIT`` of a clone); the catalogue is
built from it exactly as ``srzoo catalog update`` does, and its sha256 is
compared with the shipped pin when COMMIT is the pinned revision.

Columns: records; ``convert`` = srzoo converts its .pth/.safetensors (architecture
and size tags known, converter installed); ``onnx`` = only a published ONNX,
run as is (cv2.dnn may still refuse the graph when it loads it); ``script`` =
of the runnable ones, how many a script can download (the rest are on Google
Drive, Mega, OneDrive... and need ``srzoo fetch omdb:ID --from FILE``).
Prints a Markdown table, then the runnable and script-downloadable totals with the
reasons for the rest (architecture without a converter, host without a route).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import sys
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srzoo.hub import hosts  # noqa: E402
from srzoo.hub.catalog import records, store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", type=Path, help="tar.gz of the repository at --revision")
    ap.add_argument("--revision", help="the commit the archive holds")
    args = ap.parse_args(argv)
    if args.archive:
        if not args.revision:
            ap.error("--archive needs --revision")
        data = store.build_from_archive(args.archive.read_bytes(), args.revision, str(args.archive))
        cat = store.parse_catalogue(data, str(args.archive))
        pin = store.shipped_pin()
        sha = hashlib.sha256(data).hexdigest()
        if args.revision == pin.revision:
            same = (len(data), sha) == (pin.size, pin.sha256)
            print(f"built catalogue: {len(data)} bytes, sha256 {sha}: "
                  f"{'matches' if same else 'DOES NOT MATCH'} the shipped pin", file=sys.stderr)
    else:
        cat = store.load()
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for rec in cat.records.values():
        c = rows[rec.arch]
        c["records"] += 1
        status = rec.runnable
        if status == "yes":
            c["convert"] += 1
        elif status == "onnx":
            c["onnx"] += 1
        if status != "no" and rec.resource().downloadable:
            c["script"] += 1
    order = sorted(rows, key=lambda a: (-(rows[a]["convert"] + rows[a]["onnx"]), -rows[a]["records"], a))
    total: collections.Counter = collections.Counter()
    print(f"OpenModelDB at {cat.revision[:12]}: {len(cat.records)} records\n")
    print("| architecture | records | srzoo converts | published ONNX only | runnable, script-downloadable |")
    print("|---|---:|---:|---:|---:|")
    for a in order:
        c = rows[a]
        total.update(c)
        if c["convert"] or c["onnx"] or c["records"] >= 5:
            print(f"| {a} | {c['records']} | {c['convert']} | {c['onnx']} | {c['script']} |")
    rest = [a for a in order if not (rows[a]["convert"] or rows[a]["onnx"] or rows[a]["records"] >= 5)]
    if rest:
        n = sum(rows[a]["records"] for a in rest)
        print(f"| {len(rest)} others | {n} | 0 | 0 | 0 |")
    print(f"| **all** | **{total['records']}** | **{total['convert']}** | **{total['onnx']}** | "
          f"**{total['script']}** |")
    print()
    for line in summary(cat):
        print(line)
    return 0


def _reason_not_runnable(rec: records.Record) -> str:
    why = rec.why_not_runnable() or ""
    if "no converter for" in why:
        return f"no converter for {rec.arch or 'an unnamed architecture'}"
    if "is a video model" in why:
        return f"video model ({rec.arch}: several frames in)"
    if "channels" in why:
        return "not a 3-channel colour model"
    if "size tags" in why:
        return f"{rec.arch}: size tags srzoo does not know"
    if "lists no weight file" in why:
        return "no weight file"
    if "srzoo converts" in why:
        return f"{rec.arch}: published only in a format srzoo does not convert"
    return why or "unknown"


def _reason_not_downloadable(rec: records.Record) -> str:
    kinds = set()
    for res in rec.resources:
        for u in res.urls:
            netloc = (urlparse(u).hostname or "?").lower()
            if hosts.gdrive_id(u) is None and netloc in hosts.GDRIVE_HOSTS:
                kinds.add("Google Drive folder")
            elif hosts.mega_link(u) is None and netloc in hosts.MEGA_HOSTS:
                kinds.add("Mega folder")
            else:
                kinds.add(netloc)
    return "only on " + ", ".join(sorted(kinds)) if kinds else "no URL"


def summary(cat: store.Catalogue) -> list[str]:
    """Runnable and script-downloadable totals, then why the other records are not."""
    recs = list(cat.records.values())
    runnable = [r for r in recs if r.runnable != "no"]
    down = [r for r in recs if r.downloadable]
    both = [r for r in runnable if r.resource().downloadable]
    out = [f"runnable: {len(runnable)} of {len(recs)} "
           f"({sum(r.runnable == 'yes' for r in runnable)} converted, {sum(r.runnable == 'onnx' for r in runnable)} "
           f"published ONNX)",
           f"downloadable by a script: {len(down)} of {len(recs)}; runnable and downloadable: {len(both)}", "",
           "not runnable, by reason:"]
    why = collections.Counter(_reason_not_runnable(r) for r in recs if r.runnable == "no")
    out += [f"  {n:4d}  {w}" for w, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))]
    out += ["", "not downloadable by a script (srzoo fetch omdb:ID --from FILE), by host:"]
    why = collections.Counter(_reason_not_downloadable(r) for r in recs if not r.downloadable)
    out += [f"  {n:4d}  {w}" for w, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))]
    return out


if __name__ == "__main__":
    sys.exit(main())
