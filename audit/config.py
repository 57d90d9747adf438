"""Configuration: ``audit.toml`` plus ``AUDIT_<SECTION>__<KEY>`` environment overrides.

The file is found by ``--config``, then ``AUDIT_CONFIG``, then ``./audit.toml``; without any
file the embedded defaults apply (SQLite, simulated archive). Every value is validated on load
and an error names the key and the file it came from. Secrets are ``SecretStr`` so that they
never show up in a repr, a log line or ``audit config show``; a password inside a URL (the
database's, a proxy's) is masked by :func:`mask_url` wherever a URL is shown.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from audit.days import DEFAULT_ZONE, zone

ENV_PREFIX = "AUDIT_"
DEFAULT_CONFIG_NAME = "audit.toml"


class ConfigError(Exception):
    """A configuration problem, worded for the person who has to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = "sqlite:///audit.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _parses(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(v)
        except ArgumentError:
            # the value itself may hold a password: name its shape, not its text
            raise ValueError(
                "not a database URL (expected sqlite:///FILE or "
                "postgresql+psycopg://USER:PASSWORD@HOST/DB)"
            ) from None
        return v


class ArchiveConfig(_Section):
    source: Literal["simulator", "file", "sdk"] = "simulator"
    # file source: JSON lines of GetChatData pages or chatdata items
    path: Path | None = None
    # simulator source: the directory written by `audit simulate`
    simulator_dir: Path = Path("data/sim")
    corpid: str = ""
    secret: SecretStr = SecretStr("")
    page_size: int = Field(default=1000, ge=1, le=1000)
    # private keys by publickey_ver: {"1": "keys/v1.pem"}
    keys: dict[int, Path] = Field(default_factory=dict)
    key_passphrase: SecretStr | None = None
    decryptor: Literal["native", "sdk"] = "native"
    workers: int = Field(default=0, ge=0, le=64)  # 0: one per core
    # audit run: a process analyses what has been decrypted while the pull goes on, a pass
    # whenever this many messages wait for the stages. 0 (default): after the pull. Worth it
    # when the pull waits on the network; pulling a local archive keeps the cores busy anyway
    analyse_while_pulling: int = Field(default=0, ge=0)
    # sdk source and decryptor: the official libWeWorkFinanceSdk_C.so (default: from the
    # pywecomarchive wheel, if installed), proxy and timeout of GetChatData
    sdk_library: Path | None = None
    proxy: str = ""
    proxy_password: SecretStr = SecretStr("")
    timeout: int = Field(default=10, ge=1, le=600)
    # audit watch: pull every watch_interval seconds, or at once on a msgaudit_notify callback
    watch_interval: float = Field(default=60, gt=0)
    notify_port: int = Field(default=0, ge=0, le=65535)  # 0: no callback endpoint
    notify_address: str = "127.0.0.1"
    notify_token: SecretStr = SecretStr("")
    notify_aes_key: SecretStr = SecretStr("")  # the callback's EncodingAESKey
    # what one client can make the endpoint hold (see audit/archive/notify.py)
    notify_max_body: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    notify_timeout: float = Field(default=10, gt=0, le=300)  # seconds per socket read/write
    notify_workers: int = Field(default=8, ge=1, le=256)  # requests handled at once
    notify_backlog: int = Field(default=16, ge=0, le=4096)  # waiting; beyond them: 503
    notify_max_age: int = Field(default=300, ge=1, le=86400)  # timestamp window, seconds
    # messages exchanged with a customer who refused archiving: always kept, flagged and
    # excluded from exports; "skip_scan" also keeps them out of the scanner
    consent_mode: Literal["flag", "skip_scan"] = "flag"


class WeComConfig(_Section):
    """The WeCom HTTP APIs for contacts, tags, rooms and consent (``audit sync-contacts``)."""

    base_url: str = "https://qyapi.weixin.qq.com/cgi-bin"
    corpid: str = ""  # default: archive.corpid
    contact_secret: SecretStr = SecretStr("")  # 客户联系 secret: externalcontact/*
    archive_secret: SecretStr | None = (
        None  # 会话内容存档 secret: msgaudit/*; default archive.secret
    )
    timeout: float = Field(default=10.0, gt=0)
    requests_per_second: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, ge=0)
    proxy: str | None = None  # None: the environment's proxy; "": none


class MediaConfig(_Section):
    # download images, voice, video and files of conversations with findings (needs the SDK)
    enabled: bool = False
    directory: Path = Path("data/media")
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_attempts: int = Field(default=3, ge=1)


class ImagesConfig(_Section):
    # read the pictures of conversations after the pull: QR codes, then text by OCR
    enabled: bool = True
    ocr: Literal["all", "flagged", "off"] = "all"
    # QR payload prefixes that are never findings: the corp's own official account and WeCom
    # contact codes (these are the simulated operator's; list your own)
    allow_payloads: list[str] = Field(
        default_factory=lambda: [
            "http://weixin.qq.com/q/02LxTxOfficial",
            "https://work.weixin.qq.com/ca/cawcde-lxtx",
        ]
    )
    workers: int = Field(default=0, ge=0)  # reading processes; 0: one per core
    batch_size: int = Field(default=200, ge=1)  # image messages per batch (and per images task)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)


class SimulatorConfig(_Section):
    seed: int = 7
    regions: int = Field(default=2, ge=1)
    cities_per_region: int = Field(default=2, ge=1)
    stores: int = Field(default=20, ge=1)
    staff_per_store: int = Field(default=6, ge=1)
    customers_per_staff: int = Field(default=25, ge=1)
    days: int = Field(default=7, ge=1)
    start: str = "2026-11-16"
    messages: int = Field(default=40_000, ge=1)
    traditional_share: float = Field(default=0.12, ge=0, le=1)
    violation_rate: float = Field(default=0.06, ge=0, le=1)
    key_bits: int = Field(default=2048, ge=1024)
    images: bool = True  # real picture files for image messages (audit.archive.simulator.pictures)


class ScanConfig(_Section):
    wordlists: Path = Path("wordlists")
    batch_size: int = Field(default=2000, ge=1)
    workers: int = Field(default=0, ge=0, le=64)  # reading processes; 0: one per core


class ConversationConfig(_Section):
    idle_gap_minutes: int = Field(default=30, ge=1)


class QualityConfig(_Section):
    """Service-quality metrics, classifiers and the scorecard."""

    timezone: str = DEFAULT_ZONE  # business hours and days are local time
    sla_minutes: float = Field(default=5, gt=0)  # a reply within this counts as in SLA
    business_hours: str = "09:00-21:00"  # SLA clock runs only inside these hours
    business_days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])  # ISO 1=Mon
    dormant_days: int = Field(default=30, ge=1)  # customer silent this long: dormant
    models: Path = Path("models")  # trained classifiers and their model cards
    scorecard: Path | None = None  # YAML; default: the scorecard shipped with the package
    workers: int = Field(default=0, ge=0, le=64)  # scoring processes; 0: one per core
    batch_size: int = Field(default=500, ge=1)  # conversations a scoring batch

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        zone(v)  # its ValueError names the zone
        return v

    @field_validator("business_hours")
    @classmethod
    def _hours_parse(cls, v: str) -> str:
        # checked here, with the key named, rather than by the first stage that needs the clock
        from audit.quality.metrics import BusinessClock

        BusinessClock.parse(v)  # its ValueError says what is wrong with the value
        return v

    @field_validator("business_days")
    @classmethod
    def _iso_weekdays(cls, v: list[int]) -> list[int]:
        if not v or not set(v) <= set(range(1, 8)):
            raise ValueError(f"{v}: ISO weekdays 1 (Monday) .. 7 (Sunday), at least one")
        return v


class ReviewHoursConfig(_Section):
    """How long an alert may stay open before its review is overdue, by severity (hours)."""

    critical: float = Field(default=2, gt=0, le=24 * 365)
    high: float = Field(default=8, gt=0, le=24 * 365)
    medium: float = Field(default=24, gt=0, le=24 * 365)
    low: float = Field(default=72, gt=0, le=24 * 365)


class AlertConfig(_Section):
    # findings at or above this severity open an alert
    min_severity: Literal["low", "medium", "high", "critical"] = "high"
    # a conversation scoring under this raises a quality alert (fatal items always do)
    low_score: float = Field(default=60, ge=0, le=100)
    # this many consecutive conversations of a staff member missing the SLA raise an alert
    sla_streak: int = Field(default=3, ge=0)
    # the review deadline: an open alert older than this is overdue in the queue
    review_hours: ReviewHoursConfig = ReviewHoursConfig()


class DigestRouteConfig(_Section):
    """One extra digest destination: a mailbox, a group robot or a WeCom member."""

    name: str  # stable: it identifies the route in digests_sent
    channel: Literal["email", "webhook", "wecom_app"]
    to: SecretStr  # address, robot webhook URL (holds its key) or WeCom userid
    org_units: list[str] = Field(default_factory=list)  # codes; empty: the whole company
    show_staff_names: bool = False  # full staff names (else 张*)


class DigestConfig(_Section):
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_tls: bool = False  # TLS from the start (port 465)
    sender: str = "audit@localhost"
    recipients: list[str] = Field(default_factory=list)  # company-wide digest by e-mail
    webhook_url: SecretStr = SecretStr("")  # company-wide digest to a group robot
    users: bool = True  # each admin, compliance officer and supervisor with an e-mail
    routes: list[DigestRouteConfig] = Field(default_factory=list)
    dashboard_url: str = ""  # deep links: <dashboard_url>/?alert=ID
    top_alerts: int = Field(default=10, ge=0)
    app_agentid: int | None = None  # optional WeCom application channel
    app_secret: SecretStr = SecretStr("")


PushChannel = Literal["wecom_app", "webhook"]
PushRole = Literal["supervisor", "compliance", "admin"]
PUSH_CHANNELS: tuple[PushChannel, ...] = ("wecom_app", "webhook")
PUSH_ROLES: tuple[PushRole, ...] = ("supervisor",)


class PushConfig(_Section):
    """Real-time push of critical alerts to the store's supervisors (``audit watch``)."""

    enabled: bool = False
    # the WeCom application message (needs digest.app_agentid) and the routes' group robots
    channels: list[PushChannel] = Field(default_factory=lambda: list(PUSH_CHANNELS))
    # at most this many messages to one recipient in any minute; the rest in one summary
    max_per_minute: int = Field(default=5, ge=1, le=20)
    # dashboard users of these roles, by scope (compliance and admin: the whole company)
    roles: list[PushRole] = Field(default_factory=lambda: list(PUSH_ROLES))
    # dashboard username -> WeCom userid, where they differ (default: the username)
    userids: dict[str, str] = Field(default_factory=dict)
    routes: bool = True  # also digest.routes on these channels, each for its org units
    max_age_minutes: int = Field(default=60, ge=1)  # older alerts are left to the digest
    max_attempts: int = Field(default=10, ge=1)  # a failed push is retried each cycle
    after_run: bool = False  # push after `audit run` too


class DashboardConfig(_Section):
    port: int = Field(default=8501, ge=1, le=65535)
    address: str = "127.0.0.1"
    # sign-in throttling: this many refused sign-ins of one name within the window lock it
    signin_max_failures: int = Field(default=5, ge=1, le=1000)
    # the same over every name from one address; 0 turns it off (set 0 behind a reverse
    # proxy, where every browser has the proxy's address)
    signin_max_failures_per_address: int = Field(default=20, ge=0, le=100_000)
    signin_window_seconds: int = Field(default=60, ge=1, le=86400)
    signin_lockout_minutes: int = Field(default=15, ge=1, le=1440)
    # a signed-in session ends after this long without a page load, and after this long in all
    session_idle_minutes: int = Field(default=480, ge=5, le=10080)
    session_max_hours: int = Field(default=24, ge=1, le=720)
    # mark the session cookie Secure (only sent over HTTPS): set when served behind TLS
    cookie_secure: bool = False
    # names for the acquisition channels (the ``state`` of a contact-me code, which the corp
    # chooses): {"qr_store_*" = "门店扫码", "poster_5g" = "海报活码"}; a key ending in * names
    # every state that starts with the rest; a state without a name is shown as written
    channel_labels: dict[str, str] = Field(default_factory=dict)


class SigninConfig(_Section):
    """Sign-in through WeCom (企业微信扫码登录, and 网页授权 inside the WeCom app) beside the
    password form; off unless ``wecom`` is set.

    The application is a self-built app (自建应用) whose 可信域名 / 授权回调域 is the
    dashboard's host; by default the one of ``digest.app_agentid`` and ``digest.app_secret``.
    A WeCom member signs in as the dashboard user linked to their userid in ``wecom_userids``
    (username -> userid, compared without case as WeCom does), or, with
    ``wecom_match_username``, as the user of the same name (unless that user is linked to
    another userid). Nobody else is let in.
    """

    wecom: bool = False
    wecom_agentid: int | None = Field(default=None, ge=1)  # default: digest.app_agentid
    wecom_secret: SecretStr | None = None  # default: digest.app_secret
    # WeCom's pages: the QR-code login, and the authorization used inside the WeCom app
    wecom_login_url: str = "https://login.work.weixin.qq.com/wwlogin/sso/login"
    wecom_authorize_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    # dashboard username -> WeCom userid
    wecom_userids: dict[str, str] = Field(default_factory=dict)
    wecom_match_username: bool = False
    # how long a started WeCom sign-in may take before its state is refused
    wecom_state_minutes: int = Field(default=10, ge=1, le=60)

    @field_validator("wecom_login_url", "wecom_authorize_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"{v[:80]!r}: an http(s) URL is required")
        return v

    @field_validator("wecom_userids")
    @classmethod
    def _one_user_per_userid(cls, v: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for username, userid in v.items():
            key = userid.strip().lower()
            if not key:
                raise ValueError(f"{username}: an empty WeCom userid")
            if key in seen:
                raise ValueError(
                    f"WeCom userid {userid!r} is linked to both {seen[key]!r} and {username!r}: "
                    "one dashboard user per WeCom member"
                )
            seen[key] = username
        return v

    def username_for(self, userid: str) -> str | None:
        """The dashboard username WeCom member ``userid`` signs in as, or ``None``."""
        key = userid.strip().lower()
        if not key:
            return None
        for username, linked in self.wecom_userids.items():
            if linked.strip().lower() == key:
                return username
        if self.wecom_match_username and key not in self.wecom_userids:
            return key
        return None


class PrivacyConfig(_Section):
    """The key of the pseudonyms that stand for people where a role may not see names.

    ``pseudonym_key`` or ``pseudonym_key_file`` (a file holding the key, e.g. 32 random bytes
    from ``head -c 32 /dev/urandom``); with neither, each process draws a random key, so
    pseudonyms hold within one dashboard run and change when it restarts. Changing the key
    changes every pseudonym: nothing stored depends on it.
    """

    pseudonym_key: SecretStr = SecretStr("")
    pseudonym_key_file: Path | None = None


class ClusterConfig(_Section):
    """Spreading the pipeline over worker hosts (:mod:`audit.cluster`, the ``cluster`` extra).

    Empty ``broker_url``: no cluster, everything runs in one process (the default)."""

    broker_url: str = ""  # amqp://USER:PASSWORD@HOST:5672/VHOST (or redis://HOST:6379/0)
    result_backend: str = "rpc://"  # where task results travel back to the coordinator
    queue_prefix: str = "audit"  # queues <prefix>.decrypt, .scan, .images, .analyse
    partitions: int = Field(default=8, ge=1, le=1024)  # conversation partitions (stable hash)
    decrypt_batch: int = Field(default=500, ge=1)  # envelopes per decrypt task
    scan_batch: int = Field(default=2000, ge=1)  # messages per scan task
    score_batch: int = Field(default=500, ge=1)  # conversations per scoring task
    max_retries: int = Field(default=5, ge=0)  # then the task is recorded in `audit failures`
    retry_backoff_max: int = Field(default=60, ge=1)  # seconds between retries, at most
    task_timeout: int = Field(default=3600, ge=1)  # seconds the coordinator waits for a stage


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database: DatabaseConfig = DatabaseConfig()
    archive: ArchiveConfig = ArchiveConfig()
    media: MediaConfig = MediaConfig()
    images: ImagesConfig = ImagesConfig()
    wecom: WeComConfig = WeComConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    scan: ScanConfig = ScanConfig()
    conversations: ConversationConfig = ConversationConfig()
    quality: QualityConfig = QualityConfig()
    alerts: AlertConfig = AlertConfig()
    digest: DigestConfig = DigestConfig()
    dashboard: DashboardConfig = DashboardConfig()
    signin: SigninConfig = SigninConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    push: PushConfig = PushConfig()
    cluster: ClusterConfig = ClusterConfig()
    # where the values came from, for error messages and `audit config show`
    source: str = Field(default="<defaults>", exclude=True)

    @field_validator("source")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @model_validator(mode="after")
    def _wecom_signin_complete(self) -> Settings:
        if not self.signin.wecom:
            return self
        missing = []
        if not (self.wecom.corpid or self.archive.corpid):
            missing.append("wecom.corpid (or archive.corpid)")
        if self.wecom_signin_agentid is None:
            missing.append("signin.wecom_agentid (or digest.app_agentid)")
        if not self.wecom_signin_secret.get_secret_value():
            missing.append("signin.wecom_secret (or digest.app_secret)")
        if missing:
            raise ValueError(f"signin.wecom is on but these are not set: {', '.join(missing)}")
        return self

    @property
    def wecom_signin_agentid(self) -> int | None:
        """The application WeCom sign-in goes through (``signin``, else the digest's)."""
        return self.signin.wecom_agentid or self.digest.app_agentid

    @property
    def wecom_signin_secret(self) -> SecretStr:
        s = self.signin.wecom_secret
        return s if s is not None and s.get_secret_value() else self.digest.app_secret


def _set_path(data: dict[str, Any], keys: list[str], value: str) -> None:
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"environment override {'.'.join(keys)}: {key} is not a section")
        node = child
    node[keys[-1]] = value


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``AUDIT_DATABASE__URL=...`` -> ``{"database": {"url": ...}}``.

    Values stay strings; pydantic converts them (``"true"``, ``"42"``, JSON lists for lists).
    """
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if any(not k for k in keys):
            continue
        _set_path(out, keys, value)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _coerce_env_lists(data: dict[str, Any]) -> dict[str, Any]:
    # A list given in the environment is written as JSON: AUDIT_DIGEST__RECIPIENTS='["a@x"]'.
    import json

    for section in data.values():
        if not isinstance(section, dict):
            continue
        for key, value in list(section.items()):
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    section[key] = json.loads(value)
    return data


def _format_errors(err: ValidationError, where: str) -> str:
    lines = [f"invalid configuration in {where}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        # a check across sections has no key of its own: its message names the keys
        lines.append(f"  {key}: {e['msg']}" if key else f"  {e['msg']}")
    return "\n".join(lines)


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    env = os.environ.get("AUDIT_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from AUDIT_CONFIG)")
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load the config file (if any), apply environment and explicit overrides, validate."""
    environ = dict(os.environ) if environ is None else environ
    file = find_config_file(path)
    data: dict[str, Any] = {}
    where = "<defaults>"
    if file is not None:
        try:
            with file.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
        where = str(file)
    env = _coerce_env_lists(_env_overrides(environ))
    if env:
        where = f"{where} + environment ({', '.join(sorted(_env_names(environ)))})"
    data = _merge(data, env)
    if overrides:
        data = _merge(data, overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, where)) from None
    return settings.model_copy(update={"source": where})


def _env_names(environ: dict[str, str]) -> list[str]:
    return [n for n in environ if n.startswith(ENV_PREFIX) and "__" in n]


MASK = "***"
# query parameters that carry credentials (?password=..., ?access_token=..., ?key=...)
_SECRET_PARAM = re.compile(r"pass|secret|token|key|sig|auth|credential", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its password and credential-like query values replaced by ``***``.

    The one masking rule for URLs, used by ``audit config show``, ``audit init`` and error
    messages. Text that is not a URL with a scheme comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "://" not in url:
        return url
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else netloc
    query = "&".join(
        f"{name}={MASK}" if eq and _SECRET_PARAM.search(name) else f"{name}{eq}{value}"
        for name, eq, value in (p.partition("=") for p in parts.query.split("&") if p)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    # assembled by hand: urlunsplit drops the "//" of an empty host (sqlite:///file)
    tail = (f"?{query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def _mask_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    if isinstance(value, str):
        return mask_url(value)
    return value


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret replaced, for display.

    ``SecretStr`` values dump as ``**********``; passwords inside URLs (``database.url``,
    proxies) are masked by :func:`mask_url`.
    """
    data: dict[str, Any] = _mask_urls(settings.model_dump(mode="json"))
    return data
