"""portal.env: typed settings readers, and ``<NAME>_FILE`` for every kind of variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.env import ImproperlyConfiguredEnv, env_bool, env_int, env_list, env_str


def test_every_reader_takes_its_value_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"X_STR": "s3cret\n", "X_LIST": "a, b,,c\n", "X_BOOL": "0\n", "X_INT": " 42\n"}
    for name, content in values.items():
        (tmp_path / name).write_text(content)
        monkeypatch.setenv(f"{name}_FILE", str(tmp_path / name))
        monkeypatch.setenv(name, "ignored: the file wins")

    assert env_str("X_STR") == "s3cret"
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    assert env_bool("X_BOOL", True) is False
    assert env_int("X_INT", 0) == 42


def test_defaults_apply_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X_STR", "X_BOOL", "X_INT"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    assert env_str("X_STR", "d") == "d"
    assert env_bool("X_BOOL", True) is True
    assert env_int("X_INT", 7) == 7
    with pytest.raises(ImproperlyConfiguredEnv, match="X_STR is required"):
        env_str("X_STR")


def test_it_names_the_variable_of_a_bad_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfiguredEnv, match="X_BOOL='maybe' is not a boolean"):
        env_bool("X_BOOL", False)
    monkeypatch.setenv("X_INT", "12s")
    with pytest.raises(ImproperlyConfiguredEnv, match="X_INT='12s' is not an integer"):
        env_int("X_INT", 0)
    monkeypatch.setenv("X_STR_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfiguredEnv, match=r"X_STR_FILE=.* cannot be read"):
        env_str("X_STR")
