"""The domain, as SQLAlchemy 2 typed models.

The schema is made only by the Alembic migrations in ``audit/store/migrations``; a test checks
that these models and the migrations agree. Enums are stored by value as plain strings so
that the same migration runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# the enums live in audit.domain (every layer uses them); models re-export them for the store
from audit.domain import (
    AlertState,
    ConversationKind,
    EnvelopeState,
    Role,
    SenderKind,
    Severity,
)
from audit.store.types import (
    JSONType,
    UTCDateTime,
    bigpk,
    created_at,
    intpk,
    json_dict,
    json_list,
    str64,
    str128,
    str255,
    utcnow,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


# --------------------------------------------------------------------------- organisation


class OrgUnit(Base):
    """A node of the company tree: region > city > store, any depth."""

    __tablename__ = "org_units"

    id: Mapped[intpk]
    code: Mapped[str64] = mapped_column(unique=True)
    name: Mapped[str128]
    kind: Mapped[str] = mapped_column(String(32))  # region, city, store, district, ...
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    # "/1/4/17/": ancestors and self, so "everything below X" is one LIKE query
    path: Mapped[str255] = mapped_column(index=True, default="")

    parent: Mapped[OrgUnit | None] = relationship(remote_side=lambda: [OrgUnit.id])


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[intpk]
    userid: Mapped[str128] = mapped_column(unique=True)
    name: Mapped[str128]
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    position: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=True)  # in the permit list

    org_unit: Mapped[OrgUnit | None] = relationship()


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[intpk]
    external_userid: Mapped[str128] = mapped_column(unique=True)
    name: Mapped[str128] = mapped_column(default="")
    type: Mapped[int] = mapped_column(Integer, default=1)  # 1 WeChat user, 2 WeCom user
    gender: Mapped[int] = mapped_column(Integer, default=0)
    corp_name: Mapped[str] = mapped_column(String(128), default="")
    consent: Mapped[str] = mapped_column(String(16), default="unknown")  # agree|disagree|unknown
    consent_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Follow(Base):
    """A customer added by a staff member, with the acquisition channel (``state``)."""

    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("staff_id", "customer_id"),)

    id: Mapped[intpk]
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    remark: Mapped[str] = mapped_column(String(128), default="")
    added_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    add_way: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(64), default="", index=True)


class TagGroup(Base):
    __tablename__ = "tag_groups"

    id: Mapped[str64] = mapped_column(primary_key=True)  # WeCom group_id ("et...")
    name: Mapped[str128]
    order: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[str64] = mapped_column(primary_key=True)  # WeCom tag id ("et...")
    group_id: Mapped[str] = mapped_column(ForeignKey("tag_groups.id"), index=True)
    name: Mapped[str128]
    order: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    group: Mapped[TagGroup] = relationship()


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = (UniqueConstraint("customer_id", "tag_id", "staff_id"),)

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    tag_id: Mapped[str] = mapped_column(ForeignKey("tags.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[intpk]
    roomid: Mapped[str128] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    creator: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    notice: Mapped[str] = mapped_column(Text, default="")
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    members: Mapped[list[Any]] = mapped_column(JSONType, default=list)


# --------------------------------------------------------------------------- archive


class Checkpoint(Base):
    """The largest ``seq`` stored per source; advanced in the page's own transaction."""

    __tablename__ = "checkpoints"

    source: Mapped[str64] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Envelope(Base):
    """A chatdata item exactly as the archive delivered it. Never deleted."""

    __tablename__ = "envelopes"
    __table_args__ = (Index("ix_envelopes_source_seq", "source", "seq"),)

    id: Mapped[bigpk]
    source: Mapped[str64]
    seq: Mapped[int] = mapped_column(BigInteger)
    msgid: Mapped[str] = mapped_column(String(255), unique=True)
    publickey_ver: Mapped[int] = mapped_column(Integer, default=0)
    encrypt_random_key: Mapped[str] = mapped_column(Text, default="")
    encrypt_chat_msg: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the item as received
    state: Mapped[EnvelopeState] = mapped_column(
        _enum(EnvelopeState, "envelope_state"), default=EnvelopeState.PENDING, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[created_at]
    decrypted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class StageFailure(Base):
    """An item a stage after decryption could not process, set aside with the reason.

    ``item`` names it: a message's msgid, or ``conversation:<id>`` / ``finding:<id>`` for the
    stages that work on those. ``audit retry-failed`` deletes the rows and runs the stages again.
    """

    __tablename__ = "stage_failures"
    __table_args__ = (UniqueConstraint("stage", "item"),)

    id: Mapped[bigpk]
    stage: Mapped[str] = mapped_column(String(32), index=True)
    item: Mapped[str255]
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failed_at: Mapped[created_at]


class Conversation(Base):
    __tablename__ = "conversations"
    # the conversations of a thread that a time window can touch (the conversation stage)
    __table_args__ = (Index("ix_conversations_thread_started_at", "thread", "started_at"),)

    id: Mapped[bigpk]
    # the thread plus the start time in ms: stable across re-runs
    key: Mapped[str] = mapped_column(String(400), unique=True)
    # the pair or room the conversation belongs to: "single:<staff>:<customer>", "room:<roomid>"
    thread: Mapped[str] = mapped_column(String(300))
    kind: Mapped[ConversationKind] = mapped_column(_enum(ConversationKind, "conversation_kind"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    roomid: Mapped[str | None] = mapped_column(String(128), index=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    staff_messages: Mapped[int] = mapped_column(Integer, default=0)
    customer_messages: Mapped[int] = mapped_column(Integer, default=0)


class Message(Base):
    """A decrypted message, typed. Recalled messages stay and are marked ``recalled``."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_msgtime_id", "msgtime", "id"),)

    id: Mapped[bigpk]
    envelope_id: Mapped[int] = mapped_column(ForeignKey("envelopes.id"), unique=True)
    msgid: Mapped[str] = mapped_column(String(255), unique=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(16))  # send | recall | switch
    msgtype: Mapped[str] = mapped_column(String(64), index=True)
    sender: Mapped[str] = mapped_column(String(128), default="", index=True)
    sender_kind: Mapped[SenderKind] = mapped_column(
        _enum(SenderKind, "sender_kind"), default=SenderKind.UNKNOWN
    )
    tolist: Mapped[json_list]
    roomid: Mapped[str] = mapped_column(String(128), default="", index=True)
    msgtime: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text, default="")  # what the scanner reads
    raw: Mapped[json_dict]  # the decrypted JSON, whole
    recalled: Mapped[bool] = mapped_column(Boolean, default=False)
    recalled_by: Mapped[str | None] = mapped_column(String(255))  # msgid of the recall
    recall_of: Mapped[str | None] = mapped_column(String(255), index=True)  # for recalls
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    scanned_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_runs.id"), index=True)
    # classifier probabilities ({"customer_negative": 0.93}), written by the scan stage
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # the customer had refused archiving when this was sent: kept, flagged, never exported
    consent_withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # what was replaced to make the decrypted text storable ("text: 1 NUL -> U+FFFD"), if any
    repairs: Mapped[str | None] = mapped_column(String(255))


class MediaFile(Base):
    """A downloaded attachment (image, voice, video, file), stored by content hash: a
    message's own (item 0), or a picture item of a ``mixed`` message or forwarded chat
    record (its index among the items)."""

    __tablename__ = "media_files"
    __table_args__ = (UniqueConstraint("message_id", "item"),)

    id: Mapped[bigpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    item: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sdkfileid: Mapped[str] = mapped_column(Text, index=True)  # an archive file's pictures
    state: Mapped[str] = mapped_column(String(16), default="pending")  # stored|failed|skipped
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    md5sum: Mapped[str] = mapped_column(String(32), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    path: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


# --------------------------------------------------------------------------- analysis


class ScanRun(Base):
    __tablename__ = "scan_runs"

    id: Mapped[intpk]
    started_at: Mapped[created_at]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    mode: Mapped[str] = mapped_column(String(16), default="incremental")  # incremental | full
    wordlist_hash: Mapped[str64]
    scanner_version: Mapped[str] = mapped_column(String(32))
    model_versions: Mapped[json_dict]
    scorecard_version: Mapped[str] = mapped_column(String(64), default="")
    messages_scanned: Mapped[int] = mapped_column(Integer, default=0)
    findings_count: Mapped[int] = mapped_column(Integer, default=0)


class WordlistEdit(Base):
    """A compliance officer's change to the word lists (see :mod:`audit.store.wordlist_edits`):
    a term added (``origin`` "added", with its fields), or a note on, or the switching off of,
    a term of the files (``origin`` "file"). One row per category and normalized term."""

    __tablename__ = "wordlist_edits"
    __table_args__ = (UniqueConstraint("category", "term_key"),)

    id: Mapped[intpk]
    category: Mapped[str] = mapped_column(String(32))
    term: Mapped[str64]  # as the officer wrote it
    term_key: Mapped[str64]  # normalized, as the lists compare terms
    origin: Mapped[str] = mapped_column(String(8))  # added | file
    severity: Mapped[str] = mapped_column(String(16), default="medium")
    roles: Mapped[str] = mapped_column(String(16), default="both")
    variants: Mapped[json_list]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str128]
    created_at: Mapped[created_at]
    updated_by: Mapped[str128]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RescanRequest(Base):
    """A full rescan asked for by a word-list edit; the next ``audit run`` / ``audit watch``
    cycle / ``audit scan`` performs it and fills in ``done_at`` and its scan run."""

    __tablename__ = "rescan_requests"

    id: Mapped[intpk]
    requested_at: Mapped[created_at]
    requested_by: Mapped[str128]
    reason: Mapped[str255]
    wordlist_hash: Mapped[str64]  # the effective lists' hash when it was asked for
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    scan_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_runs.id", ondelete="SET NULL"))


class Finding(Base):
    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("message_id", "rule", "start", "end"),)

    id: Mapped[bigpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("scan_runs.id"), index=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    rule: Mapped[str128]
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), index=True)
    score: Mapped[float] = mapped_column(Float, default=1.0)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    matched: Mapped[str] = mapped_column(String(255))
    explanation: Mapped[str] = mapped_column(Text, default="")
    # where on an image the finding is (box, decoded payload or recognized text); None for text
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[created_at]


class ImageScan(Base):
    """One image's content, read once however many messages carry it (keyed by sha256)."""

    __tablename__ = "image_scans"

    id: Mapped[bigpk]
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    qr: Mapped[json_list]  # [{"payload", "kind", "box"}]
    ocr_read: Mapped[bool] = mapped_column(Boolean, default=False)
    ocr_lines: Mapped[json_list]  # [{"text", "box", "score"}]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]


class MessageImage(Base):
    """An image of a message (``item``: its place among the items of a ``mixed`` message or a
    forwarded chat record)."""

    __tablename__ = "message_images"
    __table_args__ = (UniqueConstraint("message_id", "item"),)

    id: Mapped[bigpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    item: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))  # read | failed | skipped | none
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[created_at]


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("conversation_id", "scorecard_version"),)

    id: Mapped[bigpk]
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    scorecard_version: Mapped[str64]
    score: Mapped[float] = mapped_column(Float)
    deductions: Mapped[json_list]
    metrics: Mapped[json_dict]
    created_at: Mapped[created_at]


class Alert(Base):
    """One alert per incident.

    A finding alert is the incident "this message, this category": however many rules or
    overlapping spans fired, one alert, led by the most severe finding (``finding_id``), the
    others being its evidence (the message's findings of the category). A fatal scorecard
    item caused by findings is recorded on their alerts (``causes``), not raised again.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_message_id_category", "message_id", "category", unique=True),
    )

    id: Mapped[bigpk]
    # one alert per cause: "finding:<message msgid>:<category>", "quality:<cause>:<conv>"...,
    # so re-runs never duplicate
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="finding")
    category: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[Severity] = mapped_column(_enum(Severity, "severity"), index=True)
    state: Mapped[AlertState] = mapped_column(
        _enum(AlertState, "alert_state"), default=AlertState.OPEN, index=True
    )
    title: Mapped[str] = mapped_column(String(255))
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id", ondelete="SET NULL"))
    # the incident's message (finding alerts); NULL for alerts about a conversation or a person
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    # what else this alert stands for: "scorecard:fatal:<item>" (a fatal scorecard item caused
    # by this incident), "merged:<dedupe_key>" (a duplicate merged into it by migration 0005)
    causes: Mapped[list[Any]] = mapped_column(
        JSONType, default=list, nullable=False, server_default=text("'[]'")
    )
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Review(Base):
    """A supervisor judgement on an alert. Rows are only ever added."""

    __tablename__ = "reviews"

    id: Mapped[bigpk]
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[AlertState] = mapped_column(_enum(AlertState, "alert_state"))
    to_state: Mapped[AlertState] = mapped_column(_enum(AlertState, "alert_state"))
    comment: Mapped[str] = mapped_column(Text, default="")
    # survives rescans: the finding's rule and matched text at review time
    finding_rule: Mapped[str | None] = mapped_column(String(128))
    finding_matched: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[created_at]


class AuditLog(Base):
    """Append-only: the migrations add triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"

    id: Mapped[bigpk]
    at: Mapped[created_at]
    actor: Mapped[str128]
    action: Mapped[str64]
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[json_dict]


class DigestSent(Base):
    __tablename__ = "digests_sent"
    __table_args__ = (UniqueConstraint("day", "channel", "recipient"),)

    id: Mapped[intpk]
    day: Mapped[dt.date]
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    recipient: Mapped[str255]
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="sent")
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[created_at]


class AlertPush(Base):
    """One critical alert pushed to one recipient: claimed (``sending``), then ``sent``,
    ``summarised`` (counted in a throttled recipient's summary message) or ``failed``
    (retried by the next cycle). The unique key makes it once per alert and recipient, also
    across restarts and concurrent watchers."""

    __tablename__ = "alert_pushes"
    __table_args__ = (UniqueConstraint("alert_id", "channel", "recipient"),)

    id: Mapped[bigpk]
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))  # wecom_app | webhook
    recipient: Mapped[str255]  # the recipient's key: never a secret (no webhook URL)
    status: Mapped[str] = mapped_column(String(16), default="sending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[created_at]
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    username: Mapped[str64] = mapped_column(unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.VIEWER)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
    # raised by a password change or a disable: dashboard sessions signed in before it end
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    scopes: Mapped[list[UserScope]] = relationship(cascade="all, delete-orphan")


class SigninFailure(Base):
    """A refused sign-in (wrong password, unknown or disabled user), kept for throttling.

    In the database rather than in memory so that every dashboard process sees the same
    count; rows older than the throttle's horizon are pruned as new ones come.
    """

    __tablename__ = "signin_failures"
    __table_args__ = (
        Index("ix_signin_failures_username_at", "username", "at"),
        Index("ix_signin_failures_ip_at", "ip", "at"),
    )

    id: Mapped[bigpk]
    at: Mapped[created_at]
    username: Mapped[str128]
    ip: Mapped[str64] = mapped_column(String(64), default="")


class WebSession(Base):
    """A signed-in dashboard session: the browser holds a random token in an HTTP-only
    cookie, the database its SHA-256 (a stolen database gives no usable token).

    It ends when the user signs out (``ended_at``), after ``dashboard.session_idle_minutes``
    without a page load, after ``dashboard.session_max_hours`` in all, or when the user's
    ``session_epoch`` moves on (password change, disable).
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),)

    id: Mapped[bigpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[created_at]
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    ip: Mapped[str64] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class UserScope(Base):
    """An org unit a user may see, with everything below it."""

    __tablename__ = "user_scopes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)


# --------------------------------------------------------------------------- pre-aggregates
#
# Derived data, rebuilt by ``audit.store.daily.refresh_daily`` (the last pipeline stage) and
# read by ``audit.reports`` only while they are exactly as fresh as the data they are
# made from (see ``daily.is_fresh``); otherwise the reports compute live. No foreign keys:
# these rows describe the other tables and must never stand in the way of changing them.


class ConversationFact(Base):
    """One row per conversation: what the per-conversation measures read, in plain columns.

    The score columns are those of the newest scorecard version (``NULL`` when the
    conversation has no score of that version); ``findings`` counts the findings whose
    ``conversation_id`` is this conversation; ``day`` is the China day it started.

    What the quality page reads of the score: ``unanswered_since`` (the metrics' text, set only
    when the customer was left unanswered at the end) and ``response_business_s`` (the JSON
    text of the answered bursts' business seconds). What the dormant list reads of the
    messages (one-to-one conversations only, sent messages of staff and customer; ``NULL``
    otherwise): the last customer message, the first and last staff message (in microseconds
    since the epoch), the number of staff messages and of those after the last customer
    message; and per pair of staff member and customer, the same over all their one-to-one
    conversations, on each of them, with one of them marked as the pair's head.
    """

    __tablename__ = "conversation_facts"
    __table_args__ = (
        Index("ix_conversation_facts_staff_id_customer_id", "staff_id", "customer_id"),
    )

    conversation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    org_unit_id: Mapped[int | None] = mapped_column(Integer)
    staff_id: Mapped[int | None] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    day: Mapped[dt.date] = mapped_column(index=True)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    scorecard_version: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    within_sla: Mapped[float | None] = mapped_column(Float)
    responses: Mapped[float | None] = mapped_column(Float)
    response_median_s: Mapped[float | None] = mapped_column(Float)
    negative: Mapped[float | None] = mapped_column(Float)  # max customer_negative probability
    unanswered_since: Mapped[str | None] = mapped_column(Text)
    response_business_s: Mapped[str | None] = mapped_column(Text)
    # microseconds since the epoch (audit.days.micros): compared and subtracted as numbers
    last_customer_us: Mapped[int | None] = mapped_column(BigInteger)
    first_staff_us: Mapped[int | None] = mapped_column(BigInteger)
    last_staff_us: Mapped[int | None] = mapped_column(BigInteger)
    staff_messages: Mapped[int | None] = mapped_column(Integer)
    staff_after_customer: Mapped[int | None] = mapped_column(Integer)
    # the same times over every conversation of the pair (staff_id, customer_id); the pair's
    # newest such conversation is its head, one row per pair for the dormant list
    pair_last_customer_us: Mapped[int | None] = mapped_column(BigInteger)
    pair_first_staff_us: Mapped[int | None] = mapped_column(BigInteger)
    pair_last_staff_us: Mapped[int | None] = mapped_column(BigInteger)
    pair_head: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class StoreDay(Base):
    """Per (store, China day): messages by when they were sent; conversations and the
    newest scorecard's scores by the day the conversation started. ``org_unit_id`` ``NULL``:
    messages without a conversation, or conversations without a store."""

    __tablename__ = "store_day"
    __table_args__ = (Index("ix_store_day_day_org_unit_id", "day", "org_unit_id"),)

    id: Mapped[intpk]
    org_unit_id: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[dt.date]
    messages: Mapped[int] = mapped_column(Integer, default=0)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[float | None] = mapped_column(Float)
    scored: Mapped[int] = mapped_column(Integer, default=0)
    within_sla: Mapped[float | None] = mapped_column(Float)
    responses: Mapped[float | None] = mapped_column(Float)


class StoreDayFinding(Base):
    """Findings per (store, China day, category), dated and placed by their message."""

    __tablename__ = "store_day_findings"
    __table_args__ = (Index("ix_store_day_findings_day_org_unit_id", "day", "org_unit_id"),)

    id: Mapped[intpk]
    org_unit_id: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[dt.date]
    category: Mapped[str] = mapped_column(String(32))
    n: Mapped[int] = mapped_column(Integer, default=0)
