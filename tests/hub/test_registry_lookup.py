"""Registry look-ups and their errors, value by value (mutation survivors of hub/registry)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from srzoo.errors import ManifestError, UnknownModel
from srzoo.hub import registry


def message(fn, *a) -> str:
    with pytest.raises(UnknownModel) as e:
        fn(*a)
    return str(e.value)


def test_unknown_model_suggests_close_names_and_prefixes():
    r = registry.default_registry()
    assert message(r.get, "espcm") == "unknown model 'espcm'. Did you mean: espcn? Run 'srzoo list' to see all."
    assert message(r.get, "zzzz") == "unknown model 'zzzz'. Run 'srzoo list' to see all."
    # prefixes are matched case-blind, at most 3 of them after the (at most 3) close names
    got = message(r.get, "REALESR")
    m = re.fullmatch(r"unknown model 'REALESR'\. Did you mean: (.*)\? Run 'srzoo list' to see all\.", got)
    assert m, got
    names = m.group(1).split(", ")
    prefixed = [n for n in names if n.startswith("realesr")]
    assert "realesr-animevideov3" in names and 3 <= len(prefixed) and len(names) <= 6


def test_unknown_dataset_lists_the_known_ones():
    r = registry.default_registry()
    known = sorted(d.name for d in r.datasets())
    got = message(r.dataset, "set6")
    assert got.startswith("unknown dataset 'set6'. Did you mean: set5") and got.endswith(f"Known: {', '.join(known)}.")


def test_get_picks_the_lowest_scale_and_scale_free_entries():
    r = registry.default_registry()
    assert r.get("espcn").scale == 2 == min(r.scales("espcn"))
    assert r.get("ESPCN", 4).scale == 4
    assert r.get("bicubic").scale is None and r.get("bicubic", 3).scale == 3
    assert r.scales("bicubic") == []
    with pytest.raises(UnknownModel, match=r"^model 'espcn' has no x7; it has scales x2, x3, x4$"):
        r.get("espcn", 7)
    models = r.models()
    assert [(m.name, m.scale or 0) for m in models] == sorted((m.name, m.scale or 0) for m in models)
    assert [m.scale for m in r.variants("espcn")] == [2, 3, 4]


def test_missing_manifest_path_is_one_clear_error(tmp_path):
    with pytest.raises(ManifestError) as e:
        registry.Registry([str(tmp_path / "nope.toml")])
    assert str(e.value) == (f"{tmp_path / 'nope.toml'}: manifest file or folder not found "
                            "(check SRZOO_REGISTRY or the paths given to srzoo)")


def test_default_registry_is_built_once():
    assert registry.default_registry() is registry.default_registry()


def test_close_names_down_to_half_similar():
    # 'lapxxx' is exactly 0.5 similar to 'lapsrn' (difflib's default cutoff is 0.6)
    r = registry.default_registry()
    assert message(r.get, "lapxxx") == "unknown model 'lapxxx'. Did you mean: lapsrn? Run 'srzoo list' to see all."


ENTRY = '''
[[model]]
name = "mine"
scale = {scale}
format = "onnx"
license = "MIT"
file = "mine_x{scale}.onnx"
size = 10
sha256 = "{sha}"
urls = ["https://example.org/mine_x{scale}.onnx"]
'''


def manifest(tmp_path, *scales: int, name: str = "m.toml"):
    p = tmp_path / name
    p.write_text("schema = 1\n" + "".join(ENTRY.format(scale=s, sha="a" * 64) for s in scales))
    return p


def test_models_sorted_by_scale_whatever_the_manifest_order(tmp_path):
    r = registry.Registry([str(manifest(tmp_path, 4, 2, 3))])
    assert [m.scale for m in r.variants("mine")] == [2, 3, 4]
    assert r.get("mine").scale == 2


def test_add_manifest_validates_now_and_takes_effect(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = 1\n[[model]]\nname = 'x'\n")
    folder = tmp_path / "more"
    folder.mkdir()
    manifest(folder, 8)
    before = list(registry._extra_paths)
    try:
        with pytest.raises(ManifestError, match=r"bad.toml: model\[0\]"):
            registry.add_manifest(bad)
        with pytest.raises(ManifestError, match="manifest file or folder not found"):
            registry.add_manifest(tmp_path / "nope")
        assert registry._extra_paths == before  # nothing half-added
        first = registry.default_registry()
        registry.add_manifest(folder)
        assert registry.default_registry() is not first  # re-read with the new folder
        assert registry.default_registry().get("mine").scale == 8
    finally:
        registry._extra_paths[:] = before
        registry._default = None


def test_builtin_manifests_in_a_wheel_or_beside_the_package(tmp_path, monkeypatch):
    """A wheel holds the manifests as srzoo/_manifests (pyproject's force-include); a source
    tree has registry/ beside the package; bundled model files are srzoo/builtin either way.
    Both layouts laid out by hand (the module's __file__ pointed into them)."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    hatch = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]
    assert hatch["wheel"]["force-include"]["registry"] == "srzoo/_manifests"
    site = (tmp_path / "site").resolve()
    pkg = site / "srzoo"
    (pkg / "hub").mkdir(parents=True)
    monkeypatch.setattr(registry, "__file__", str(pkg / "hub" / "registry.py"))
    assert registry.builtin_manifest_dir() == site / "registry"  # a source tree
    assert registry.bundled_dir() == pkg / "builtin"
    (pkg / "_manifests").mkdir()
    assert registry.builtin_manifest_dir() == pkg / "_manifests"  # a wheel


def test_default_registry_is_read_once_until_its_sources_change(tmp_path, monkeypatch):
    first = registry.default_registry()
    assert registry.default_registry() is first  # not every manifest parsed again per lookup
    monkeypatch.setenv("SRZOO_REGISTRY", str(tmp_path))
    second = registry.default_registry()
    assert second is not first and registry.default_registry() is second
