"""Channels and recipients as the configuration describes them.

Reads the ``[digest]`` section. Keys beyond the current ``DigestConfig`` are read with
defaults, so this works before and after they are added to :mod:`audit.config`:

- ``dashboard_url`` (str): base of the deep links, ``<dashboard_url>/?alert=<id>``;
- ``smtp_tls`` (bool): implicit TLS (port 465) instead of plain or STARTTLS;
- ``users`` (bool, default true): digest every supervisor, compliance officer and admin with
  an e-mail address in the users table;
- ``routes`` (list of :class:`~audit.digest.recipients.DigestRoute`): extra destinations with
  their own scope, e.g. one group robot per region;
- ``app_agentid`` (int) and ``app_secret`` (secret): the optional WeCom application channel
  (the corp id comes from ``wecom.corpid`` or ``archive.corpid``);
- ``top_alerts`` (int, default 10).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from sqlalchemy.orm import Session

from audit.config import Settings
from audit.digest.channel import Channel
from audit.digest.recipients import DigestRoute, Recipient, digest_recipients
from audit.digest.run import DigestOptions
from audit.digest.smtp import SmtpChannel
from audit.digest.webhook import RobotWebhookChannel


def _get(settings: Settings, key: str, default: Any) -> Any:
    return getattr(settings.digest, key, default)


def _secret(value: Any) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")


def digest_options(settings: Settings) -> DigestOptions:
    return DigestOptions(
        timezone=settings.quality.timezone,
        dashboard_url=str(_get(settings, "dashboard_url", "")),
        top=int(_get(settings, "top_alerts", 10)),
    )


def routes(settings: Settings) -> list[DigestRoute]:
    return [
        r
        if isinstance(r, DigestRoute)
        else DigestRoute.model_validate(r if isinstance(r, dict) else r.model_dump())
        for r in _get(settings, "routes", [])
    ]


def configured_recipients(session: Session, settings: Settings) -> list[Recipient]:
    return digest_recipients(
        session,
        emails=settings.digest.recipients,
        webhook_url=settings.digest.webhook_url.get_secret_value(),
        routes=routes(settings),
        users=bool(_get(settings, "users", True)),
    )


def configured_channels(settings: Settings) -> dict[str, Channel]:
    cfg = settings.digest
    security = "starttls" if cfg.smtp_starttls else "none"
    if _get(settings, "smtp_tls", False):
        security = "tls"
    channels: dict[str, Channel] = {
        "email": SmtpChannel(
            cfg.smtp_host,
            cfg.smtp_port,
            cfg.sender,
            user=cfg.smtp_user,
            password=cfg.smtp_password,
            security=security,  # type: ignore[arg-type]
        ),
        "webhook": RobotWebhookChannel(),
    }
    agentid = _get(settings, "app_agentid", None)
    if agentid:
        from audit.archive.wecom_api import WeComClient
        from audit.digest.wecom_app import WeComAppChannel

        client = WeComClient.from_settings(settings, _secret(_get(settings, "app_secret", "")))
        channels["wecom_app"] = WeComAppChannel(client, int(agentid))
    return channels
