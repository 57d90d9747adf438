"""Reports over the store for the dashboard: one module per page, the figures defined once.

==================  =================================================================
module              what
==================  =================================================================
``common``          periods of local days (configured zone), the filter, the org tree,
                    scoping, :func:`live`
``figures``         the store table, its totals and the measures of conversations
``overview``        the overview page (one pass over the data for every window)
``stores``          store, city and region rankings; staff
``alerts``          the alert queue (paged, review deadlines; also one conversation's)
``conversation``    one conversation for reading (logged)
``pictures``        a conversation's pictures with findings, boxes drawn, masked by role
``customers``       tags, acquisition channels, dormant customers
``staff``           one staff member: conversations, alerts, scores, response times
``customer``        one customer: conversations, tags, follows (masked by role)
``quality``         customers waiting now, response p50/p90 per staff member (business
                    time, the quality clock), daily trends of a store's figures
``wordlists``       hits and verdicts per rule
``trail``           the audit log
``status``          ``audit status --json``; the pipeline's lag (officers, admins)
==================  =================================================================

Every page-level function takes the signed-in :class:`~audit.store.access.Principal` and
narrows itself; the names below are the API the dashboard and the tools use.
"""

from __future__ import annotations

from audit.reports.alerts import (
    QueuePage,
    QueueQuery,
    alert_queue_page,
    review_hours,
    staff_choices,
)
from audit.reports.common import (
    LIVE_OPTION,
    STORE_KIND,
    UNASSIGNED,
    OrgNode,
    Period,
    ReportFilter,
    data_period,
    live,
    org_tree,
    scoped,
    scoped_org_tree,
)
from audit.reports.conversation import (
    ConversationView,
    FindingView,
    MessageView,
    conversation_alerts,
    open_conversation,
)
from audit.reports.customers import (
    DORMANT_PAGE,
    DormantList,
    channel_table,
    dormant_customers,
    dormant_page,
    tag_table,
)
from audit.reports.figures import (
    COUNT_COLUMNS,
    MEASURE_COLUMNS,
    NEGATIVE_THRESHOLD,
    STORE_COLUMNS,
    OverviewTotals,
    findings_by_category,
    messages_per_day,
    scoped_messages_per_day,
    scoped_store_table,
    store_table,
    summarize,
)
from audit.reports.overview import DailyCounts, Overview, Window, daily_counts, overview
from audit.reports.pictures import PictureMark, PictureView
from audit.reports.status import PipelineLag, pipeline_lag_for
from audit.reports.stores import LEVELS, staff_table, store_ranking
from audit.reports.trail import audit_trail
from audit.reports.wordlists import rule_examples, rule_table

__all__ = [
    "COUNT_COLUMNS",
    "DORMANT_PAGE",
    "LEVELS",
    "LIVE_OPTION",
    "MEASURE_COLUMNS",
    "NEGATIVE_THRESHOLD",
    "STORE_COLUMNS",
    "STORE_KIND",
    "UNASSIGNED",
    "ConversationView",
    "DailyCounts",
    "DormantList",
    "FindingView",
    "MessageView",
    "OrgNode",
    "Overview",
    "OverviewTotals",
    "Period",
    "PictureMark",
    "PictureView",
    "PipelineLag",
    "QueuePage",
    "QueueQuery",
    "ReportFilter",
    "Window",
    "alert_queue_page",
    "audit_trail",
    "channel_table",
    "conversation_alerts",
    "daily_counts",
    "data_period",
    "dormant_customers",
    "dormant_page",
    "findings_by_category",
    "live",
    "messages_per_day",
    "open_conversation",
    "org_tree",
    "overview",
    "pipeline_lag_for",
    "review_hours",
    "rule_examples",
    "rule_table",
    "scoped",
    "scoped_messages_per_day",
    "scoped_org_tree",
    "scoped_store_table",
    "staff_choices",
    "staff_table",
    "store_ranking",
    "store_table",
    "summarize",
    "tag_table",
]
