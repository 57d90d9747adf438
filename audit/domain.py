"""The project's vocabulary, once: states, kinds, severities, roles, finding categories and
audit trail actions,
each with its one Chinese label.

Every layer may import this module (it imports nothing of ours), so the scanner, the store,
the dashboard, digests and exports all speak of a category or a state the same way. Values
are stored in the database: never change one, add a new member instead.
"""

from __future__ import annotations

import enum


class _Labelled(enum.StrEnum):
    """A stored value with a Chinese label for people (``label``)."""

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def bilingual(self) -> str:
        """``"隐私泄露 privacy"``: the label with the stored value as a secondary hint."""
        return f"{self.label} {self.value.replace('_', ' ')}"


class EnvelopeState(_Labelled):
    PENDING = "pending"
    DECRYPTED = "decrypted"
    FAILED = "failed"


class SenderKind(_Labelled):
    STAFF = "staff"
    CUSTOMER = "customer"
    ROBOT = "robot"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class Severity(_Labelled):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


class AlertState(_Labelled):
    OPEN = "open"
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Role(_Labelled):
    ADMIN = "admin"
    COMPLIANCE = "compliance"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    VIEWER = "viewer"


class ConversationKind(_Labelled):
    SINGLE = "single"  # a staff member and a customer
    ROOM = "room"  # a group chat
    INTERNAL = "internal"  # two staff members, one-to-one


class Category(_Labelled):
    """Finding categories (stable ids; see ARCHITECTURE: the word lists cover each)."""

    PRIVACY = "privacy"
    DIVERSION = "diversion"
    PROMISE = "promise"
    ABUSE = "abuse"
    COMPLAINT = "complaint"
    FRAUD = "fraud"
    ILLEGAL = "illegal"


class Action(_Labelled):
    """What an ``audit_log`` row records (written only by :func:`audit.store.access.record`).

    The values are the ones the trail has always stored: a new kind of entry is a new member.
    """

    SIGNIN = "signin"
    SIGNIN_FAILED = "signin.failed"
    SIGNIN_LOCKED = "signin.locked"
    USER_ADD = "user.add"
    USER_DISABLE = "user.disable"
    USER_PASSWORD = "user.password"
    CONVERSATION_VIEW = "conversation.view"
    CONVERSATION_DENIED = "conversation.denied"
    CONVERSATION_MERGE = "conversation.merge"
    ALERT_REVIEW = "alert.review"
    ALERT_ASSIGN = "alert.assign"
    EXPORT = "export"
    EXPORT_DENIED = "export_denied"
    EXPORT_FAILED = "export_failed"
    DIGEST = "digest"
    WORDLIST_ADD = "wordlist.add"
    WORDLIST_DISABLE = "wordlist.disable"
    WORDLIST_ENABLE = "wordlist.enable"
    WORDLIST_NOTE = "wordlist.note"
    CIPHERTEXT_PURGE = "ciphertext.purge"

    @property
    def target_type(self) -> str:
        """What ``target_id`` names: a user, a conversation, an alert, an export, a digest,
        a word-list term (``<category>/<term>``)."""
        head = self.value.split(".")[0].split("_")[0]
        return "user" if head == "signin" else head


CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)

_SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}

_LABELS: dict[enum.StrEnum, str] = {
    EnvelopeState.PENDING: "待解密",
    EnvelopeState.DECRYPTED: "已解密",
    EnvelopeState.FAILED: "失败",
    SenderKind.STAFF: "员工",
    SenderKind.CUSTOMER: "客户",
    SenderKind.ROBOT: "机器人",
    SenderKind.SYSTEM: "系统",
    SenderKind.UNKNOWN: "未知",
    Severity.LOW: "低",
    Severity.MEDIUM: "中",
    Severity.HIGH: "高",
    Severity.CRITICAL: "严重",
    AlertState.OPEN: "待处理",
    AlertState.CONFIRMED: "已确认",
    AlertState.FALSE_POSITIVE: "误报",
    AlertState.ESCALATED: "已上报",
    AlertState.RESOLVED: "已处理",
    Role.ADMIN: "管理员",
    Role.COMPLIANCE: "合规专员",
    Role.SUPERVISOR: "督导",
    Role.ANALYST: "分析员",
    Role.VIEWER: "访客",
    ConversationKind.SINGLE: "单聊",
    ConversationKind.ROOM: "群聊",
    ConversationKind.INTERNAL: "内部单聊",
    Category.PRIVACY: "隐私泄露",
    Category.DIVERSION: "私下导流",
    Category.PROMISE: "违规承诺",
    Category.ABUSE: "辱骂",
    Category.COMPLAINT: "投诉风险",
    Category.FRAUD: "违规办理",
    Category.ILLEGAL: "违法内容",
    Action.SIGNIN: "登录",
    Action.SIGNIN_FAILED: "登录失败",
    Action.SIGNIN_LOCKED: "登录锁定",
    Action.USER_ADD: "新建账号",
    Action.USER_DISABLE: "停用账号",
    Action.USER_PASSWORD: "修改密码",
    Action.CONVERSATION_VIEW: "查看会话",
    Action.CONVERSATION_DENIED: "拒绝查看会话",
    Action.CONVERSATION_MERGE: "合并会话",
    Action.ALERT_REVIEW: "处理预警",
    Action.ALERT_ASSIGN: "分派预警",
    Action.EXPORT: "导出",
    Action.EXPORT_DENIED: "拒绝导出",
    Action.EXPORT_FAILED: "导出失败",
    Action.DIGEST: "发送日报",
    Action.WORDLIST_ADD: "新增词条",
    Action.WORDLIST_DISABLE: "停用词条",
    Action.WORDLIST_ENABLE: "启用词条",
    Action.WORDLIST_NOTE: "词条备注",
    Action.CIPHERTEXT_PURGE: "清除已解密密文",
}


def label_of(value: str, *kinds: type[_Labelled]) -> str:
    """The Chinese label of a stored ``value`` of one of ``kinds``; the value itself when it
    belongs to none (an unknown category from an older list stays readable)."""
    for kind in kinds:
        try:
            return kind(value).label
        except ValueError:
            continue
    return value
