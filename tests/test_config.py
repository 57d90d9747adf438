from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import cli
from audit.config import ConfigError, load_settings, mask_url, redacted


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


def test_wecom_signin_is_off_and_when_on_needs_its_app(tmp_path: Path) -> None:
    assert load_settings(environ={}).signin.wecom is False
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[signin]\nwecom = true\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    message = str(exc.value)
    assert str(cfg) in message and "signin.wecom is on but these are not set" in message
    for key in ("wecom.corpid", "signin.wecom_agentid", "signin.wecom_secret"):
        assert key in message
    # the digest's application is the default one
    cfg.write_text(
        '[signin]\nwecom = true\n[wecom]\ncorpid = "ww1"\n'
        '[digest]\napp_agentid = 1000002\napp_secret = "APP-SECRET-4"\n'
    )
    s = load_settings(cfg, environ={})
    assert s.wecom_signin_agentid == 1000002
    assert s.wecom_signin_secret.get_secret_value() == "APP-SECRET-4"
    assert "APP-SECRET-4" not in json.dumps(redacted(s)) + repr(s)
    s = load_settings(
        cfg,
        environ={"AUDIT_SIGNIN__WECOM_AGENTID": "1000005", "AUDIT_SIGNIN__WECOM_SECRET": "S-5"},
    )
    assert (s.wecom_signin_agentid, s.wecom_signin_secret.get_secret_value()) == (1000005, "S-5")


def test_wecom_userids_link_one_user_each_ignoring_case(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text('[signin.wecom_userids]\n"zhang.wei" = "ZhangWei"\n"li" = "zhangwei"\n')
    with pytest.raises(ConfigError, match=r"signin\.wecom_userids: .*linked to both"):
        load_settings(cfg, environ={})
    cfg.write_text('[signin.wecom_userids]\n"zhang.wei" = "ZhangWei"\n"wang" = "LiSi"\n')
    signin = load_settings(cfg, environ={}).signin
    assert signin.username_for("zhangwei") == "zhang.wei"  # WeCom userids ignore case
    assert signin.username_for("WANG") is None  # no match by name unless asked
    assert signin.username_for("") is None
    signin = signin.model_copy(update={"wecom_match_username": True})
    assert signin.username_for("Ma.Yun") == "ma.yun"
    assert signin.username_for("LiSi") == "wang"  # a link wins over a name
    assert signin.username_for("wang") is None  # wang is linked to LiSi, not to wang


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ('[quality]\ntimezone = "Mars/Olympus"\n', "quality.timezone", "unknown time zone"),
        ('[quality]\ntimezone = "../../etc/passwd"\n', "quality.timezone", "unknown time zone"),
        ('[quality]\nbusiness_hours = "9-21"\n', "quality.business_hours", "is not HH:MM"),
        ('[quality]\nbusiness_hours = "09:00"\n', "quality.business_hours", "HH:MM-HH:MM"),
        ('[quality]\nbusiness_hours = "25:00-21:00"\n', "quality.business_hours", "time of day"),
        ("[quality]\nbusiness_days = [0, 8]\n", "quality.business_days", "ISO weekdays"),
        ("[quality]\nbusiness_days = []\n", "quality.business_days", "ISO weekdays"),
        ('[database]\nurl = "not a url"\n', "database.url", "not a database URL"),
    ],
)
def test_when_a_value_only_a_later_stage_reads_is_bad_then_load_names_key_and_file(
    tmp_path: Path, toml: str, key: str, says: str
) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    message = str(exc.value)
    assert message.splitlines()[0] == f"invalid configuration in {cfg}:"
    assert f"  {key}: " in message and says in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://audit:S3cret-pw@db:5432/audit",
            "postgresql+psycopg://audit:***@db:5432/audit",
        ),
        (
            "postgresql+psycopg://audit@db/audit?password=S3cret-pw&sslmode=require",
            "postgresql+psycopg://audit@db/audit?password=***&sslmode=require",
        ),
        ("http://proxy-user:S3cret-pw@proxy:3128", "http://proxy-user:***@proxy:3128"),
        ("redis://:S3cret-pw@broker:6379/0", "redis://:***@broker:6379/0"),
        ("https://hook/send?key=S3cret-pw", "https://hook/send?key=***"),
        ("sqlite:///audit.db", "sqlite:///audit.db"),
        ("Asia/Shanghai", "Asia/Shanghai"),
    ],
)
def test_mask_url_hides_passwords_and_credential_parameters(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_config_show_masks_the_password_in_the_database_url(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        '[database]\nurl = "postgresql+psycopg://audit:DB-PW-1@db:5432/audit"\n'
        '[wecom]\nproxy = "http://u:PROXY-PW-2@proxy:3128"\n'
        '[archive]\nproxy_password = "PROXY-PW-3"\nnotify_token = "TOKEN-4"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 0, result.output
    for secret in ("DB-PW-1", "PROXY-PW-2", "PROXY-PW-3", "TOKEN-4"):
        assert secret not in result.output
    shown = json.loads(result.output.split("\n", 1)[1])
    assert shown["database"]["url"] == "postgresql+psycopg://audit:***@db:5432/audit"
    assert shown["wecom"]["proxy"] == "http://u:***@proxy:3128"


@pytest.mark.postgres
def test_init_shows_the_database_url_masked_like_config_show(pg_database: str) -> None:
    from sqlalchemy import make_url

    # the test server trusts local connections, so any password signs in
    url = make_url(pg_database).set(password="INIT-PW-5").render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["--db", url, "init"])
    assert result.exit_code == 0, result.output
    assert "INIT-PW-5" not in result.output
    assert result.output.rstrip().endswith(mask_url(url))
