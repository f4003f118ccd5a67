"""The model-management commands: list, fetch, cache, info."""

from __future__ import annotations

import json

import pytest

from srzoo.cli import main
from suite import cache_files


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_has_contract_keys(srzoo_env, capsys):
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    espcn4 = next(r for r in rows if r["name"] == "espcn" and r["scale"] == 4)
    assert espcn4 == {**espcn4, "file": "ESPCN_x4.pb", "size": 100323, "format": "tf-graphdef",
                      "license": "Apache-2.0", "cached": False,
                      "sha256": "e403f06309229cf36009cd8fb0da032ba7643fae9f15cf94fe562e8edf8fef47"}


def test_list_table_and_cached_column(srzoo_env, capsys):
    assert run(capsys, "fetch", "fsrcnn", "-s", "3", "-q")[0] == 0
    code, out, _ = run(capsys, "list", "fsrcnn*")
    table_, purpose = out.split("\n\n")
    lines = table_.splitlines()
    assert lines[0].split() == ["name", "scale", "file", "size", "format", "license", "cached", "tags"]
    rows = {tuple(l.split()[:2]): l.split()[-2] for l in lines[2:]}
    assert rows[("fsrcnn", "x3")] == "yes" and rows[("fsrcnn", "x2")] == "no"
    assert len(rows) == 6 and all(l.split()[-1] == "photo,video,fast" for l in lines[2:])
    # one line of purpose per model name
    assert purpose.splitlines()[0].split(None, 1) == ["fsrcnn", "Fast hourglass CNN on the Y channel."]


def test_every_model_says_what_it_is_for_and_list_filters_by_tag(srzoo_env, capsys):
    import srzoo

    missing = [m.name for m in srzoo.list_models() if not (m.tags and m.description)]
    assert missing == []
    code, out, _ = run(capsys, "list", "--for", "anime")
    names = {l.split()[0] for l in out.split("\n\n")[0].splitlines()[2:]}
    assert names == {"realesr-animevideov3", "realesr-animevideov3-ncnn", "realesrgan-x4plus-anime-6b",
                     "realesrgan-x4plus-anime-ncnn"}
    code, out, _ = run(capsys, "list", "--tag", "photo")
    assert "realesrgan-x4plus-ncnn" in out and "realesr-animevideov3 " not in out
    code, _, err = run(capsys, "list", "--tag", "nosuch")
    assert code == 1 and "no model has the tag 'nosuch'; tags: anime, " in err


def test_fetch_prints_paths_and_all(srzoo_env, capsys, mirror):
    code, out, _ = run(capsys, "fetch", "lapsrn", "--all", "--quiet")
    assert code == 0
    assert out.split() == [str(srzoo_env / "models" / f"LapSRN_x{s}.pb") for s in (2, 4, 8)]


def test_fetch_unknown_suggests_and_fails(srzoo_env, capsys):
    code, out, err = run(capsys, "fetch", "lapsr")
    assert code == 1 and out == ""
    assert "unknown model 'lapsr'" in err and "lapsrn" in err
    code, _, err = run(capsys, "fetch", "espcn", "--scale", "8")
    assert code == 1 and "has no x8; it has scales x2, x3, x4" in err


def test_fetch_failure_exit_status_and_clean_cache(srzoo_env, capsys, mirror):
    mirror.fault("/ESPCN_x2.pb", corrupt_at=10, times=None)
    code, out, err = run(capsys, "fetch", "espcn", "fsrcnn", "-q")
    assert code == 1
    assert out.split() == [str(srzoo_env / "models" / "FSRCNN_x2.pb")]  # the other one still completes
    assert err.count("\n") == 1 and "(ESPCN_x2.pb): sha256 mismatch: expected " in err
    assert cache_files(srzoo_env) == [srzoo_env.joinpath("models", "FSRCNN_x2.pb").relative_to(srzoo_env)]


def test_cache_verify_detects_corruption_and_force_repairs(srzoo_env, capsys, shared_dir):
    run(capsys, "fetch", "espcn", "--scale", "3", "-q")
    path = srzoo_env / "models" / "ESPCN_x3.pb"
    assert run(capsys, "cache", "verify")[0] == 0
    data = bytearray(path.read_bytes())
    data[500] ^= 1
    path.write_bytes(bytes(data))
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1 and f"CORRUPT {path}" in out and "srzoo fetch NAME --force" in out
    # the file changed after verification: a plain fetch re-hashes it, moves it
    # aside and fetches it again (cache trust); --force always fetches again
    code, out, err = run(capsys, "fetch", "espcn", "-s", "3", "-q")
    assert code == 0 and out.strip() == str(path)
    assert path.read_bytes() == (shared_dir / "models/opencv/ESPCN_x3.pb").read_bytes()
    assert [p.read_bytes() for p in (srzoo_env / ".damaged").iterdir()] == [bytes(data)]
    assert run(capsys, "fetch", "espcn", "-s", "3", "--force", "-q")[0] == 0
    assert path.read_bytes() == (shared_dir / "models/opencv/ESPCN_x3.pb").read_bytes()
    assert run(capsys, "cache", "verify", "espcn")[0] == 0


def test_cache_path_ls_rm(srzoo_env, capsys):
    assert run(capsys, "cache", "path")[1].strip() == str(srzoo_env)
    run(capsys, "fetch", "espcn", "fsrcnn-small", "-q")
    code, out, _ = run(capsys, "cache", "ls")
    assert "espcn x2" in out and "fsrcnn-small x2" in out
    code, out, _ = run(capsys, "cache", "ls", "espcn")
    assert "espcn x2" in out and "fsrcnn" not in out
    code, out, _ = run(capsys, "cache", "rm", "espcn")
    assert code == 0 and "ESPCN_x2.pb" in out
    assert [p.name for p in cache_files(srzoo_env)] == ["FSRCNN-small_x2.pb"]
    run(capsys, "cache", "rm")
    assert cache_files(srzoo_env) == []


def test_cache_rm_forgets_auto_choices(srzoo_env, capsys, monkeypatch):
    """`auto`'s measured choices go with their model (`cache rm NAME`) or all
    together (`cache rm`); the others stay."""
    import numpy as np

    import srzoo

    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")
    store = srzoo_env / "autotune.json"
    for name in ("espcn", "fsrcnn-small"):
        srzoo.Upscaler(name, 2)(np.zeros((20, 20, 3), np.uint8))  # medium and small classes
    models = sorted(v["model"] for v in json.loads(store.read_text()).values())
    assert models == ["espcn", "espcn", "fsrcnn-small", "fsrcnn-small"]
    code, _, err = run(capsys, "cache", "rm", "espcn")
    assert code == 0 and f"forgot 2 measured backend choice(s) of `auto` ({store})" in err
    assert sorted(v["model"] for v in json.loads(store.read_text()).values()) == ["fsrcnn-small"] * 2
    code, _, err = run(capsys, "cache", "rm")
    assert code == 0 and "forgot 2 measured" in err and not store.exists()
    code, _, err = run(capsys, "cache", "rm")
    assert code == 0 and "forgot" not in err


def test_info_reports_versions_and_backends(capsys):
    import cv2

    code, out, _ = run(capsys, "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["opencv"] == cv2.__version__
    assert info["cache_dir"]
    code, out, _ = run(capsys, "info")
    assert out.splitlines()[2].startswith(f"OpenCV {cv2.__version__}: ")


def test_offline_error_is_one_line(srzoo_env, capsys, monkeypatch):
    monkeypatch.setenv("SRZOO_OFFLINE", "1")
    code, out, err = run(capsys, "fetch", "espcn")
    assert code == 1 and err.count("\n") == 1 and "SRZOO_OFFLINE=1" in err


def test_module_entry_point(srzoo_env):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "srzoo", "fetch", "nope"], capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("srzoo: error: unknown model 'nope'")


def test_fetch_is_quiet_when_stderr_is_not_a_terminal(srzoo_env, capsys):
    # no --quiet: stderr (captured, not a terminal) must get no progress bar
    code, out, err = run(capsys, "fetch", "espcn", "-s", "4")
    assert code == 0 and out.strip() == str(srzoo_env / "models" / "ESPCN_x4.pb")
    assert err == ""
