"""srzoo.config: every SRZOO_* variable validated in one place, one line per mistake."""

from __future__ import annotations

import math

import pytest

import srzoo
from srzoo import config


@pytest.mark.parametrize("name,value", [
    ("SRZOO_TIMEOUT", "0"), ("SRZOO_TIMEOUT", "-1"), ("SRZOO_TIMEOUT", "nan"),
    ("SRZOO_TIMEOUT", "inf"), ("SRZOO_TIMEOUT", "abc"), ("SRZOO_BACKOFF", "-1"),
    ("SRZOO_RETRIES", "-1"), ("SRZOO_RETRIES", "1.5"), ("SRZOO_MIN_RATE", "0"),
    ("SRZOO_MAX_PIXELS", "0"), ("SRZOO_MAX_PIXELS", "1e999"), ("SRZOO_AUTO_TILE_PIXELS", "-5"),
    ("SRZOO_MAX_REDIRECTS", "-1"), ("SRZOO_OFFLINE", "y"), ("SRZOO_MIRROR_ONLY", "2"),
])
def test_bad_values_are_one_line_naming_variable_and_allowed_values(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(srzoo.ConfigError) as err:
        config.get(name)
    msg = str(err.value)
    assert msg.startswith(f"{name}={value!r} is not valid: expected ") and "\n" not in msg
    assert config.setting(name).allowed() in msg
    with pytest.raises(srzoo.ConfigError):
        config.validate()


def test_allowed_values_in_words():
    assert config.setting("SRZOO_TIMEOUT").allowed() == "a number > 0 and <= 86400"
    assert config.setting("SRZOO_RETRIES").allowed() == "an integer from 0 to 100"
    assert config.setting("SRZOO_OFFLINE").allowed() == "1/true/yes/on or 0/false/no/off (or empty)"


@pytest.mark.parametrize("value,expected", [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False)])
def test_booleans(monkeypatch, value, expected):
    monkeypatch.setenv("SRZOO_OFFLINE", value)
    assert config.flag("SRZOO_OFFLINE") is expected


def test_offline_y_is_an_error_not_silently_online(monkeypatch, mirror):
    monkeypatch.setenv("SRZOO_MIRROR", mirror.url)
    monkeypatch.setenv("SRZOO_OFFLINE", "y")
    with pytest.raises(srzoo.ConfigError, match="SRZOO_OFFLINE='y'"):
        srzoo.fetch("espcn", 2, quiet=True)
    assert mirror.log == []


def test_numbers_and_defaults(monkeypatch):
    for name in ("SRZOO_TIMEOUT", "SRZOO_RETRIES", "SRZOO_MAX_PIXELS"):
        monkeypatch.delenv(name, raising=False)
    assert config.get("SRZOO_TIMEOUT") == 30.0 and config.get("SRZOO_RETRIES") == 3
    assert config.get("SRZOO_MAX_PIXELS") == 1 << 30
    monkeypatch.setenv("SRZOO_TIMEOUT", " 2.5 ")
    monkeypatch.setenv("SRZOO_RETRIES", "0")
    monkeypatch.setenv("SRZOO_MAX_PIXELS", "1e6")
    assert config.get("SRZOO_TIMEOUT") == 2.5 and config.get("SRZOO_RETRIES") == 0
    assert config.get("SRZOO_MAX_PIXELS") == 1_000_000 and isinstance(config.get("SRZOO_MAX_PIXELS"), int)
    monkeypatch.setenv("SRZOO_TIMEOUT", "")  # empty: the default
    assert config.get("SRZOO_TIMEOUT") == 30.0


def test_lists_paths_and_registering_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SRZOO_MIRROR", " http://a/ , ,/srv/m ")
    assert config.get("SRZOO_MIRROR") == ["http://a/", "/srv/m"]
    monkeypatch.setenv("SRZOO_CACHE_DIR", "~/x")
    assert str(config.get("SRZOO_CACHE_DIR")).endswith("/x") and "~" not in str(config.get("SRZOO_CACHE_DIR"))
    config.register(config.Setting("SRZOO_TEST_CHOICE", "choice", "a", "a test", choices=("a", "b")))
    monkeypatch.setenv("SRZOO_TEST_CHOICE", "B")
    assert config.get("SRZOO_TEST_CHOICE") == "b"
    monkeypatch.setenv("SRZOO_TEST_CHOICE", "c")
    with pytest.raises(srzoo.ConfigError, match="expected a / b"):
        config.get("SRZOO_TEST_CHOICE")
    monkeypatch.delenv("SRZOO_TEST_CHOICE")


def test_every_srzoo_variable_the_code_reads_is_declared():
    """No module reads SRZOO_* from os.environ behind config's back."""
    import re
    from pathlib import Path

    src = Path(srzoo.__file__).parent
    for py in src.rglob("*.py"):
        if py.name == "config.py":
            continue
        text = py.read_text()
        assert not re.search(r"environ(\.get)?\s*[\[(]\s*[\"']SRZOO_", text), py
        for name in re.findall(r"config\.(?:get|flag)\(\"(SRZOO_\w+)\"\)", text):
            config.setting(name)
    assert not math.isnan(config.get("SRZOO_BACKOFF"))
