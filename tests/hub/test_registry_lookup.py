"""Registry look-ups and their errors, value by value (mutation survivors of hub/registry)."""

from __future__ import annotations

import re

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
