from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.config import ConfigError, load_settings, redacted


def test_when_no_file_then_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.database.url == "sqlite:///audit.db"
    assert s.archive.source == "simulator"
    assert s.source == "<defaults>"


def test_when_file_and_env_then_env_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text('[database]\nurl = "sqlite:///a.db"\n[archive]\npage_size = 200\n')
    s = load_settings(cfg, environ={"AUDIT_DATABASE__URL": "sqlite:///b.db"})
    assert s.database.url == "sqlite:///b.db"
    assert s.archive.page_size == 200
    assert "AUDIT_DATABASE__URL" in s.source


def test_when_env_gives_list_and_numbers_then_converted(tmp_path: Path) -> None:
    s = load_settings(
        None,
        environ={
            "AUDIT_DIGEST__RECIPIENTS": '["a@example.com", "b@example.com"]',
            "AUDIT_CONVERSATIONS__IDLE_GAP_MINUTES": "45",
        },
    )
    assert s.digest.recipients == ["a@example.com", "b@example.com"]
    assert s.conversations.idle_gap_minutes == 45


def test_when_value_invalid_then_error_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[archive]\npage_size = 5000\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert str(cfg) in str(exc.value)
    assert "archive.page_size" in str(exc.value)


def test_when_unknown_key_then_error(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[database]\nulr = 'x'\n")
    with pytest.raises(ConfigError, match=r"database\.ulr"):
        load_settings(cfg, environ={})


def test_when_toml_broken_then_error_names_file(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[database\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})


def test_when_explicit_file_missing_then_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_secrets_never_shown(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        '[archive]\nsecret = "ARCHIVE-SECRET-1"\n'
        '[digest]\nsmtp_password = "SMTP-PW-2"\nwebhook_url = "https://hook/KEY-3"\n'
    )
    s = load_settings(cfg, environ={})
    assert s.archive.secret.get_secret_value() == "ARCHIVE-SECRET-1"
    shown = json.dumps(redacted(s)) + repr(s) + str(s)
    for secret in ("ARCHIVE-SECRET-1", "SMTP-PW-2", "KEY-3"):
        assert secret not in shown


def test_example_config_in_repository_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "audit.example.toml"
    s = load_settings(example, environ={})
    assert s.database.url.startswith("sqlite:///")
