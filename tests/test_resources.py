"""Data folders are found from the working directory, the checkout, or the installed copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit import resources
from audit.resources import ResourceMissing, locate


def test_when_present_in_working_directory_then_it_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "wordlists").mkdir()
    monkeypatch.chdir(tmp_path)
    assert locate(Path("wordlists")) == Path("wordlists")


def test_when_elsewhere_then_the_checkout_copy_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert locate(Path("models")) == resources.SOURCE_ROOT / "models"


def test_when_no_checkout_then_the_bundled_copy_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = tmp_path / "bundled"
    (bundled / "dashboards").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resources, "SOURCE_ROOT", tmp_path / "no-checkout")
    monkeypatch.setattr(resources, "BUNDLED", bundled)
    assert locate(Path("dashboards")) == bundled / "dashboards"


def test_when_missing_everywhere_then_the_error_lists_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResourceMissing, match=r"my-lists not found \(looked in my-lists, "):
        locate(Path("my-lists"))
    with pytest.raises(ResourceMissing, match="does not exist"):
        locate(tmp_path / "absent")
