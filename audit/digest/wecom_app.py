"""WeCom application message (应用消息) to a member, optional.

Sent with ``message/send`` through :class:`~audit.archive.wecom_api.WeComClient`, which
already handles the access token, errcodes and rate-limit retries. An application's markdown
holds at most 2,048 bytes, so long digests are split like the robot's; WeCom allows 30
messages a minute per member, far above what a digest needs.
"""

from __future__ import annotations

from audit.archive.wecom_api import WeComApiError, WeComClient
from audit.digest.channel import DeliveryError
from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest
from audit.digest.webhook import TEXT_LIMIT, split_markdown


class WeComAppChannel:
    name = "wecom_app"

    def __init__(self, client: WeComClient, agentid: int) -> None:
        self.client = client
        self.agentid = agentid

    def send(self, recipient: Recipient, digest: RenderedDigest) -> int:
        parts = split_markdown(digest.markdown, TEXT_LIMIT)
        for part in parts:
            body = {
                "touser": recipient.address,
                "msgtype": "markdown",
                "agentid": self.agentid,
                "markdown": {"content": part},
            }
            try:
                answer = self.client.call("message/send", body)
            except WeComApiError as exc:  # retried inside the client where worth it
                raise DeliveryError(str(exc)) from None
            if answer.get("invaliduser"):
                raise DeliveryError(f"WeCom refused user {recipient.address!r}")
        return len(parts)
