"""Dashboard page time on SQLite and PostgreSQL: 1,000,000 messages, 300 stores, 3,000 staff.

Seeds a database per backend (PostgreSQL: ``audit_bench_dashboard`` on the server, dropped and
re-made each run; SQLite: ``audit_bench_dashboard.db`` in the temporary directory) with
``INSERT ... SELECT`` over a generated series (a minute, not an hour), runs the migrations
first so the schema and indexes are exactly the shipped ones, gathers planner statistics
(``ANALYZE``, as a deployment does after a load), runs the pipeline's last stage,
:func:`audit.store.daily.refresh_daily` (timed), then times every page of the dashboard.

A page's time is the data calls its script under ``dashboards/views`` makes on a first load
with its default widgets (the :mod:`audit.reports`, :mod:`audit.search` and store calls
behind ``datasource``, without Streamlit and without its cache): overview, stores, quality,
alerts, conversation (opened from an alert), customers (the dormant list's first page),
staff, customer, search (one search per tab), word lists, export (its form; the export
itself runs on submit, see ``bench/export.py``) and audit trail. Each is timed for a
compliance officer (every store) and for a supervisor of one city (default: the parent of the
store with the most alerts), for the pages their role has, median of N runs after a warm-up,
in two modes: ``aggregated`` (what the dashboard does: from the pre-aggregated tables when
they are fresh) and ``live`` (every report from the base tables, as between a load and the
daily stage).

    python bench/dashboard.py                       # both backends, 1,000,000 messages, 5 runs
    python bench/dashboard.py --backends sqlite postgresql --messages 100000 --runs 3
    python bench/dashboard.py --reuse               # time the bench databases again
    python bench/dashboard.py --reuse --backends postgresql --modes aggregated
    python bench/dashboard.py --url sqlite:///audit.db postgresql+psycopg://u@host/audit
    AUDIT_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/dashboard.py
    python bench/dashboard.py --search              # search and alert queue, SQLite and PostgreSQL
    python bench/dashboard.py --search --backends sqlite --messages 100000

``--url URL ...`` times existing databases (one per backend) instead of seeding: nothing is
dropped, seeded, migrated, refreshed or analysed, and the bench refuses a database whose
schema is not this version's (run ``audit init`` on it first). Its one write is the page's
own: each opening of a conversation is logged in the audit trail, by ``bench-officer`` or
``bench-supervisor``. ``--scope UNIT`` picks the
supervisor's org unit; the drill-down pages open the newest alert in it, its staff member and
its customer. Results are printed, and written only with ``--out``. ``--no-analyze`` leaves
out the ANALYZE after seeding, to see which pages depend on the planner's statistics.

Results (seeded runs) go to ``results/dashboard.json``: per backend the seeding time, the
refresh time, the medians per mode, person and page (wall clock, the target's measure; and
the bench process's CPU time, all of the work on SQLite, which a busy machine changes less),
the pages at or over 1 s, and the machine's load average before and after.

``--search`` times the search page's keyword query (median over :data:`KEYWORDS`, each the
median of N runs) and the alert queue's page queries, on the same databases, into
``results/dashboard-search.json`` (``--url`` works there too).

Shape: 5 regions > 30 cities > 300 stores, 10 staff per store, 50,000 customers, one
conversation per 10 messages over 30 days (every store busy every day), a finding on 1
message in 100 and an alert on a third of those (a tenth of them reviewed; all in the stores of
city 35), a score per conversation with response and waiting metrics, 2 tag groups x 4 tags
on half the customers, and a follow with one of 6 channels per (staff, customer) pair.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from audit import reports, search
from audit.config import QualityConfig, Settings
from audit.inspect import cached_wordlists
from audit.quality.metrics import BusinessClock
from audit.reports import customer as customer_report
from audit.reports import quality as quality_report
from audit.reports import staff as staff_report
from audit.resources import data_path
from audit.store import reviews, wordlist_edits
from audit.store.access import Principal, expand
from audit.store.daily import refresh_daily
from audit.store.db import DatabaseError, make_engine, migrate, require_schema, session_scope
from audit.store.models import Alert, Conversation, OrgUnit, Role

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_NAME = "audit_bench_dashboard"
DAYS = 30
START = dt.date(2026, 1, 1)
TARGET_S = 1.0

# message g says PHRASES[(g * 7) % 10] followed by "，单号<g>": each phrase is in a tenth of
# the messages, each order number in one (and in the numbers it is a prefix of)
PHRASES = (
    "您好，请问有什么可以帮您？",
    "这款手机现在有货吗",
    "宽带套餐可以升级吗",
    "我想办理携号转网",
    "话费怎么突然多扣了",
    "流量包什么时候生效",
    "5G套餐资费是多少",
    "门店几点关门",
    "发票可以开吗",
    "积分能兑换什么",
)
# what the search timing looks for: frequent phrases, rare order numbers, and misses
KEYWORDS = (
    "携号转网",
    "流量包",
    "5g套餐",
    "手机现在有货",
    "发票可以",
    "单号123457",
    "单号98765",
    "单号500000",
    "不存在的词语",
    "退款失败",
)
# what the search page's timing types into its three tabs: messages, customers, staff
SEARCH_QUERIES = ("携号转网", "客户123", "员工12")
# two characters: no trigram, so scanned (reported apart, not in the median)
SHORT_KEYWORDS = ("套餐", "退款")

SEED = [
    # org tree: ids 1-5 regions, 6-35 cities, 36-335 stores
    """INSERT INTO org_units (id, code, name, kind, parent_id, path)
       SELECT g, 'R' || g, '区域' || g, 'region', NULL, '/' || g || '/'
       FROM generate_series(1, 5) g""",
    """INSERT INTO org_units (id, code, name, kind, parent_id, path)
       SELECT g, 'C' || g, '城市' || g, 'city', 1 + (g - 6) % 5,
              '/' || (1 + (g - 6) % 5) || '/' || g || '/'
       FROM generate_series(6, 35) g""",
    """INSERT INTO org_units (id, code, name, kind, parent_id, path)
       SELECT g, 'S' || g, '门店' || g, 'store', 6 + (g - 36) % 30,
              '/' || (1 + ((g - 36) % 30) % 5) || '/' || (6 + (g - 36) % 30) || '/' || g || '/'
       FROM generate_series(36, 335) g""",
    # staff s works in store 36 + (s - 1) % 300
    """INSERT INTO staff (id, userid, name, org_unit_id, position, active, archived)
       SELECT g, 'staff' || g, '员工' || g, 36 + (g - 1) % 300, '', true, true
       FROM generate_series(1, 3000) g""",
    """INSERT INTO customers (id, external_userid, name, type, gender, corp_name, consent)
       SELECT g, 'wm' || g, '客户' || g, 1, 0, '', 'agree' FROM generate_series(1, 50000) g""",
    """INSERT INTO scan_runs (id, started_at, mode, wordlist_hash, scanner_version,
                              model_versions, scorecard_version, messages_scanned, findings_count)
       VALUES (1, now(), 'full', 'bench', 'bench', '{}', 'bench-1', 0, 0)""",
    # conversation c: staff 1 + (c - 1) % 3000, customer 1 + (c * 7) % 50000, over 30 days
    """INSERT INTO conversations (id, key, thread, kind, staff_id, customer_id, roomid,
                                  org_unit_id, started_at, ended_at, message_count,
                                  staff_messages, customer_messages)
       SELECT c, 'single:' || s || ':' || cu || ':' || c, 'single:' || s || ':' || cu,
              'single', s, cu, NULL, 36 + (s - 1) % 300, t, t + interval '10 minutes', 10, 5, 5
       FROM (SELECT c, 1 + (c - 1) % 3000 AS s, 1 + (c * 7) % 50000 AS cu,
                    timestamptz '2026-01-01 00:00+08' + ((c / 300) % :days) * interval '1 day'
                      + ((c * 37) % 43200) * interval '1 second' AS t
             FROM generate_series(1, :conversations) c) x""",
    """INSERT INTO envelopes (id, source, seq, msgid, publickey_ver, encrypt_random_key,
                              encrypt_chat_msg, raw, state, attempts, received_at)
       SELECT g, 'bench', g, 'm' || g, 1, '', '', '{}', 'decrypted', 1, now()
       FROM generate_series(1, :messages) g""",
    # message g is the ((g - 1) % 10)-th of conversation 1 + (g - 1) / 10; even ones are staff
    """INSERT INTO messages (id, envelope_id, msgid, seq, action, msgtype, sender, sender_kind,
                             tolist, roomid, msgtime, text, raw, recalled, staff_id,
                             customer_id, conversation_id, scanned_run_id, consent_withheld)
       SELECT g, g, 'm' || g, g, 'send', CASE WHEN g % 50 = 0 THEN 'image' ELSE 'text' END,
              CASE WHEN g % 2 = 0 THEN 'staff' || c.staff_id ELSE 'wm' || c.customer_id END,
              CASE WHEN g % 2 = 0 THEN 'staff' ELSE 'customer' END,
              '[]', '', c.started_at + ((g - 1) % 10) * interval '1 minute',
              (CAST(:phrases AS text[]))[1 + (g * 7) % 10] || '，单号' || g, '{}', g % 97 = 0,
              CASE WHEN g % 2 = 0 THEN c.staff_id END, c.customer_id, c.id, 1, false
       FROM generate_series(1, :messages) g
       JOIN conversations c ON c.id = 1 + (g - 1) / 10""",
    """INSERT INTO findings (id, message_id, conversation_id, scan_run_id, category, rule,
                             severity, score, start, "end", matched, explanation, created_at)
       SELECT g / 100, g, 1 + (g - 1) / 10, 1,
              (ARRAY['privacy','diversion','promise','abuse','complaint','fraud','illegal'])
                [1 + (g / 100) % 7],
              'rule' || ((g / 100) % 40),
              (ARRAY['low','medium','high','critical'])[1 + (g / 100) % 4],
              1.0, 0, 2, '您好', '', now()
       FROM generate_series(100, :messages, 100) g""",
    """INSERT INTO alerts (id, dedupe_key, kind, category, severity, state, title, finding_id,
                           conversation_id, org_unit_id, staff_id, created_at, updated_at)
       SELECT f.id, 'finding:' || f.id, 'finding', f.category, f.severity,
              CASE WHEN f.id % 10 = 0 THEN 'confirmed' WHEN f.id % 10 = 3 THEN 'false_positive'
                   ELSE 'open' END,
              f.category || '：' || f.matched, f.id, f.conversation_id, c.org_unit_id,
              c.staff_id, now(), now()
       FROM findings f JOIN conversations c ON c.id = f.conversation_id
       WHERE f.id % 3 = 0""",
    """INSERT INTO reviews (alert_id, user_id, action, from_state, to_state, comment,
                            finding_rule, finding_matched, created_at)
       SELECT a.id, NULL, CASE WHEN a.state = 'confirmed' THEN 'confirm' ELSE 'false_positive' END,
              'open', a.state, 'bench', f.rule, f.matched, now()
       FROM alerts a JOIN findings f ON f.id = a.finding_id
       WHERE a.state IN ('confirmed', 'false_positive')""",
    """INSERT INTO scores (id, conversation_id, scorecard_version, score, deductions, metrics,
                           created_at)
       SELECT c, c, 'bench-1', 60 + (c * 13) % 41, '[]',
              jsonb_build_object('within_sla', (c % 3), 'responses', 3,
                                 'response_median_seconds', 20 + (c * 7) % 300,
                                 'sla_rate', (c % 3) / 3.0,
                                 'response_business_seconds',
                                 jsonb_build_array(20 + (c * 7) % 300, (c * 13) % 900, 30),
                                 'unanswered_at_end', c % 20 = 0,
                                 'unanswered_since', CASE WHEN c % 20 = 0
                                     THEN to_char(timestamp '2026-01-01' + (c % 30) * interval
                                                  '1 day' + interval '3 hours',
                                                  'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') END,
                                 'scores_max', jsonb_build_object('customer_negative',
                                                                  ((c * 11) % 100) / 100.0)),
              now()
       FROM generate_series(1, :conversations) c""",
    """INSERT INTO tag_groups (id, name, "order", deleted)
       VALUES ('g1', '客户等级', 1, false), ('g2', '套餐', 2, false)""",
    """INSERT INTO tags (id, group_id, name, "order", deleted)
       SELECT 't' || g, CASE WHEN g <= 4 THEN 'g1' ELSE 'g2' END,
              (ARRAY['VIP','金卡','银卡','普通','5G','宽带','融合','4G'])[g], g, false
       FROM generate_series(1, 8) g""",
    """INSERT INTO customer_tags (customer_id, tag_id, staff_id)
       SELECT cu, 't' || (1 + cu % 4), NULL::integer FROM generate_series(2, 50000, 2) cu
       UNION ALL
       SELECT cu, 't' || (5 + cu % 4), NULL::integer FROM generate_series(2, 50000, 2) cu""",
    """INSERT INTO follows (staff_id, customer_id, remark, added_at, add_way, state)
       SELECT DISTINCT ON (staff_id, customer_id) staff_id, customer_id, '', started_at, 1,
              (ARRAY['store_qr','ad_5g','referral','event','online','',''])[1 + customer_id % 6]
       FROM conversations ORDER BY staff_id, customer_id, started_at""",
    """INSERT INTO users (id, username, display_name, email, password_hash, role, active,
                          created_at)
       VALUES (1, 'officer', '', '', '', 'compliance', true, now()),
              (2, 'city', '', '', '', 'supervisor', true, now())""",
    "INSERT INTO user_scopes (user_id, org_unit_id) VALUES (2, 35)",
]
SEQUENCES = [
    "org_units",
    "staff",
    "customers",
    "scan_runs",
    "conversations",
    "envelopes",
    "messages",
    "findings",
    "alerts",
    "scores",
    "users",
]


def seed(base_url: str, messages: int, stats: bool = True) -> str:
    admin = make_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    url = make_engine(base_url).url.set(database=DB_NAME).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    params = {
        "messages": messages,
        "conversations": messages // 10,
        "days": DAYS,
        "phrases": list(PHRASES),
    }
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for statement in SEED:
            names = [n for n in params if f":{n}" in statement]
            conn.execute(text(statement), {n: params[n] for n in names})
        for table in SEQUENCES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
    if stats:
        analyze(engine)
    print(
        f"postgresql: seeded {messages:,} messages in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    engine.dispose()
    return url


# --------------------------------------------------------------------------- SQLite
# The embedded default, seeded in SQL with the same shape as :data:`SEED`.


def _series(last: str, body: str, first: int = 1, step: int = 1) -> str:
    return (
        f"WITH RECURSIVE g(x) AS (SELECT {first} UNION ALL SELECT x + {step} FROM g "
        f"WHERE x + {step} <= {last}) {body}"
    )


def _phrase_case(number: str) -> str:
    whens = " ".join(f"WHEN {i} THEN '{p}'" for i, p in enumerate(PHRASES))
    return f"CASE ({number} * 7) % 10 {whens} END"


_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
SQLITE_SEED = [
    _series(
        "5",
        "INSERT INTO org_units (id, code, name, kind, parent_id, path) "
        "SELECT x, 'R' || x, '区域' || x, 'region', NULL, '/' || x || '/' FROM g",
    ),
    _series(
        "35",
        "INSERT INTO org_units (id, code, name, kind, parent_id, path) "
        "SELECT x, 'C' || x, '城市' || x, 'city', 1 + (x - 6) % 5, "
        "'/' || (1 + (x - 6) % 5) || '/' || x || '/' FROM g",
        first=6,
    ),
    _series(
        "335",
        "INSERT INTO org_units (id, code, name, kind, parent_id, path) "
        "SELECT x, 'S' || x, '门店' || x, 'store', 6 + (x - 36) % 30, "
        "'/' || (1 + ((x - 36) % 30) % 5) || '/' || (6 + (x - 36) % 30) || '/' || x || '/' FROM g",
        first=36,
    ),
    _series(
        "3000",
        "INSERT INTO staff (id, userid, name, org_unit_id, position, active, archived) "
        "SELECT x, 'staff' || x, '员工' || x, 36 + (x - 1) % 300, '', 1, 1 FROM g",
    ),
    _series(
        "50000",
        "INSERT INTO customers (id, external_userid, name, type, gender, corp_name, consent) "
        "SELECT x, 'wm' || x, '客户' || x, 1, 0, '', 'agree' FROM g",
    ),
    "INSERT INTO scan_runs (id, started_at, mode, wordlist_hash, scanner_version, "
    "model_versions, scorecard_version, messages_scanned, findings_count) "
    f"VALUES (1, {_NOW}, 'full', 'bench', 'bench', '{{}}', 'bench-1', 0, 0)",
    _series(
        ":conversations",
        "INSERT INTO conversations (id, key, thread, kind, staff_id, customer_id, roomid, "
        "org_unit_id, started_at, ended_at, message_count, staff_messages, customer_messages) "
        "SELECT c, 'single:' || s || ':' || cu || ':' || c, 'single:' || s || ':' || cu, "
        "'single', s, cu, NULL, 36 + (s - 1) % 300, t, "
        "strftime('%Y-%m-%d %H:%M:%S.000000', t, '+10 minutes'), 10, 5, 5 "
        "FROM (SELECT x AS c, 1 + (x - 1) % 3000 AS s, 1 + (x * 7) % 50000 AS cu, "
        "strftime('%Y-%m-%d %H:%M:%S.000000', '2025-12-31 16:00:00', "
        "'+' || ((x / 300) % :days) || ' days', '+' || ((x * 37) % 43200) || ' seconds') AS t "
        "FROM g)",
    ),
    _series(
        ":messages",
        "INSERT INTO envelopes (id, source, seq, msgid, publickey_ver, encrypt_random_key, "
        "encrypt_chat_msg, raw, state, attempts, received_at) "
        f"SELECT x, 'bench', x, 'm' || x, 1, '', '', '{{}}', 'decrypted', 1, {_NOW} FROM g",
    ),
    _series(
        ":messages",
        "INSERT INTO messages (id, envelope_id, msgid, seq, action, msgtype, sender, "
        "sender_kind, tolist, roomid, msgtime, text, raw, recalled, staff_id, customer_id, "
        "conversation_id, scanned_run_id, consent_withheld) "
        "SELECT x, x, 'm' || x, x, 'send', CASE WHEN x % 50 = 0 THEN 'image' ELSE 'text' END, "
        "CASE WHEN x % 2 = 0 THEN 'staff' || c.staff_id ELSE 'wm' || c.customer_id END, "
        "CASE WHEN x % 2 = 0 THEN 'staff' ELSE 'customer' END, '[]', '', "
        "strftime('%Y-%m-%d %H:%M:%S.000000', c.started_at, '+' || ((x - 1) % 10) || ' minutes'), "
        f"{_phrase_case('x')} || '，单号' || x, '{{}}', x % 97 = 0, "
        "CASE WHEN x % 2 = 0 THEN c.staff_id END, c.customer_id, c.id, 1, 0 "
        "FROM g JOIN conversations c ON c.id = 1 + (x - 1) / 10",
    ),
    _series(
        ":messages",
        "INSERT INTO findings (id, message_id, conversation_id, scan_run_id, category, rule, "
        'severity, score, start, "end", matched, explanation, created_at) '
        "SELECT x / 100, x, 1 + (x - 1) / 10, 1, "
        "CASE (x / 100) % 7 WHEN 0 THEN 'privacy' WHEN 1 THEN 'diversion' WHEN 2 THEN 'promise' "
        "WHEN 3 THEN 'abuse' WHEN 4 THEN 'complaint' WHEN 5 THEN 'fraud' ELSE 'illegal' END, "
        "'rule' || ((x / 100) % 40), "
        "CASE (x / 100) % 4 WHEN 0 THEN 'low' WHEN 1 THEN 'medium' WHEN 2 THEN 'high' "
        f"ELSE 'critical' END, 1.0, 0, 2, '您好', '', {_NOW} FROM g",
        first=100,
        step=100,
    ),
    "INSERT INTO alerts (id, dedupe_key, kind, category, severity, state, title, finding_id, "
    "conversation_id, org_unit_id, staff_id, created_at, updated_at, causes) "
    "SELECT f.id, 'finding:' || f.id, 'finding', f.category, f.severity, "
    "CASE WHEN f.id % 10 = 0 THEN 'confirmed' WHEN f.id % 10 = 3 THEN 'false_positive' "
    "ELSE 'open' END, f.category || '：' || f.matched, f.id, f.conversation_id, c.org_unit_id, "
    f"c.staff_id, {_NOW}, {_NOW}, '[]' "
    "FROM findings f JOIN conversations c ON c.id = f.conversation_id WHERE f.id % 3 = 0",
    "INSERT INTO reviews (alert_id, user_id, action, from_state, to_state, comment, "
    "finding_rule, finding_matched, created_at) "
    "SELECT a.id, NULL, CASE WHEN a.state = 'confirmed' THEN 'confirm' ELSE 'false_positive' END, "
    f"'open', a.state, 'bench', f.rule, f.matched, {_NOW} "
    "FROM alerts a JOIN findings f ON f.id = a.finding_id "
    "WHERE a.state IN ('confirmed', 'false_positive')",
    _series(
        ":conversations",
        "INSERT INTO scores (id, conversation_id, scorecard_version, score, deductions, metrics, "
        "created_at) "
        "SELECT x, x, 'bench-1', 60 + (x * 13) % 41, '[]', "
        "json_object('within_sla', x % 3, 'responses', 3, "
        "'response_median_seconds', 20 + (x * 7) % 300, 'sla_rate', (x % 3) / 3.0, "
        "'response_business_seconds', json_array(20 + (x * 7) % 300, (x * 13) % 900, 30), "
        "'unanswered_at_end', json(CASE WHEN x % 20 = 0 THEN 'true' ELSE 'false' END), "
        "'unanswered_since', CASE WHEN x % 20 = 0 THEN strftime('%Y-%m-%dT%H:%M:%S+00:00', "
        "'2026-01-01', '+' || (x % 30) || ' days', '+3 hours') END, "
        "'scores_max', json_object('customer_negative', ((x * 11) % 100) / 100.0)), "
        f"{_NOW} FROM g",
    ),
    'INSERT INTO tag_groups (id, name, "order", deleted) '
    "VALUES ('g1', '客户等级', 1, 0), ('g2', '套餐', 2, 0)",
    _series(
        "8",
        'INSERT INTO tags (id, group_id, name, "order", deleted) '
        "SELECT 't' || x, CASE WHEN x <= 4 THEN 'g1' ELSE 'g2' END, "
        "CASE x WHEN 1 THEN 'VIP' WHEN 2 THEN '金卡' WHEN 3 THEN '银卡' WHEN 4 THEN '普通' "
        "WHEN 5 THEN '5G' WHEN 6 THEN '宽带' WHEN 7 THEN '融合' ELSE '4G' END, x, 0 FROM g",
    ),
    _series(
        "50000",
        "INSERT INTO customer_tags (customer_id, tag_id, staff_id) "
        "SELECT x, 't' || (1 + x % 4), NULL FROM g "
        "UNION ALL SELECT x, 't' || (5 + x % 4), NULL FROM g",
        first=2,
        step=2,
    ),
    # one follow per (staff, customer) pair, added when they first talked (as DISTINCT ON)
    "INSERT INTO follows (staff_id, customer_id, remark, added_at, add_way, state) "
    "SELECT staff_id, customer_id, '', min(started_at), 1, "
    "CASE customer_id % 6 WHEN 0 THEN 'store_qr' WHEN 1 THEN 'ad_5g' WHEN 2 THEN 'referral' "
    "WHEN 3 THEN 'event' WHEN 4 THEN 'online' ELSE '' END "
    "FROM conversations GROUP BY staff_id, customer_id ORDER BY staff_id, customer_id",
    "INSERT INTO users (id, username, display_name, email, password_hash, role, active, "
    f"created_at) VALUES (1, 'officer', '', '', '', 'compliance', 1, {_NOW}), "
    f"(2, 'city', '', '', '', 'supervisor', 1, {_NOW})",
    "INSERT INTO user_scopes (user_id, org_unit_id) VALUES (2, 35)",
]


def seed_sqlite(path: Path, messages: int, stats: bool = True) -> str:
    """The shape of :data:`SEED`, every table the pages read, built in SQLite."""
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    params = {"messages": messages, "conversations": messages // 10, "days": DAYS}
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for statement in SQLITE_SEED:
            names = [n for n in params if f":{n}" in statement]
            conn.execute(text(statement), {n: params[n] for n in names})
    if stats:
        analyze(engine)
    seconds = time.perf_counter() - t0
    print(f"sqlite: seeded {messages:,} messages in {seconds:.1f} s", file=sys.stderr)
    engine.dispose()
    return url


# --------------------------------------------------------------------------- the pages
# Each page is the list of data calls its script under dashboards/views makes on a first load
# with its default widgets (the datasource functions' bodies, without Streamlit's cache), in
# the order the script makes them. Pages a role does not get in the navigation are skipped.

COMPLIANCE = "compliance (all stores)"
SUPERVISOR = "supervisor (1 city)"


@dataclass(frozen=True)
class Targets:
    """What the drill-down pages open: a conversation with alerts inside the supervisor's city
    (so in both people's scope), its staff member and its customer."""

    city: int
    conversation: int
    alert: int
    staff: int
    customer: int


def pick_targets(engine: Engine, city: int | None) -> Targets:
    """``city`` (default: the parent of the store with the most alerts) and, inside it, the
    newest alert's conversation."""
    with session_scope(engine) as s:
        if city is None:
            store = s.execute(
                select(Alert.org_unit_id)
                .where(Alert.org_unit_id.is_not(None))
                .group_by(Alert.org_unit_id)
                .order_by(func.count().desc(), Alert.org_unit_id)
                .limit(1)
            ).scalar()
            if store is None:
                raise SystemExit("no alert has a store: give the supervisor's unit with --scope")
            parent = s.get(OrgUnit, store)
            city = parent.parent_id if parent and parent.parent_id is not None else store
        below = expand(s, (city,)) or ()
        row = s.execute(
            select(Alert.id, Conversation.id, Conversation.staff_id, Conversation.customer_id)
            .join(Conversation, Conversation.id == Alert.conversation_id)
            .where(Conversation.org_unit_id.in_(below), Conversation.staff_id.is_not(None))
            .where(Conversation.customer_id.is_not(None))
            .order_by(Alert.id.desc())
            .limit(1)
        ).first()
    if row is None:
        raise SystemExit(f"no alert on a staff-customer conversation under unit {city}")
    alert, conversation, staff, customer = row
    assert staff is not None and customer is not None  # as the query asks
    return Targets(city, conversation, alert, staff, customer)


def _pages(engine: Engine, who: Principal, t: Targets) -> dict[str, Callable[[], Any]]:
    q = QualityConfig()
    tz = q.timezone
    clock, sla = BusinessClock.from_config(q), q.sla_minutes
    period = reports.data_period(engine, tz)
    assert period is not None, "the database has no messages"
    # the quality page's waiting list runs with the clock: "now" is early on the day after
    now = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(4), tzinfo=dt.UTC)
    hours = reports.review_hours()
    lists = cached_wordlists(data_path(Settings().scan.wordlists))

    def common() -> reports.Period:
        found = reports.data_period(engine, tz)
        assert found is not None
        return found

    def overview() -> None:
        p = common()
        with session_scope(engine) as s:
            reports.pipeline_lag_for(s, who)
        reports.scoped_org_tree(engine, who)
        reports.overview(engine, who, p, None, p.end)

    def stores() -> None:
        p = common()
        ranking = reports.store_ranking(engine, who, reports.ReportFilter(p), "store")
        if who.sees_people:  # the drill-down opens on the ranking's first row
            reports.staff_table(
                engine, who, reports.ReportFilter(p), int(ranking["unit_id"].iloc[0])
            )

    def quality() -> None:
        p = common()  # the preset picker starts on 自定义, the days with data
        f = reports.ReportFilter(p)
        quality_report.store_choices(engine, who)
        if who.sees_people:
            waiting = quality_report.waiting_now(engine, who, f, clock, sla, now, None)
            quality_report.staff_quality(engine, who, f, clock, sla, now, None, waiting)
        quality_report.daily_trend(engine, who, f, None)

    def alerts() -> None:
        p = common()
        reports.scoped_org_tree(engine, who)
        reports.staff_choices(engine, who)
        query = reports.QueueQuery(
            period=p,
            states=("open",),
            sort="severity",
            page_size=50,
            assignee_id=who.user_id,
            tz=tz,
        )
        reports.alert_queue_page(engine, who, query, hours)

    def conversation() -> None:  # opened from the queue: ?alert=ID
        view = reports.open_conversation(engine, who, None, t.alert)
        assert view is not None and view.id == t.conversation
        listed = reports.conversation_alerts(engine, who, view.id, tz, hours)
        with session_scope(engine) as s:
            reviews.alert_history(s, who, int(listed.rows["alert_id"].iloc[0]))

    def customers() -> None:
        p = common()
        reports.tag_table(engine, who, reports.ReportFilter(p))
        reports.channel_table(engine, who, reports.ReportFilter(p))
        if who.sees_people:  # the dormant list's first page
            reports.dormant_page(engine, who, 30, 1)

    def staff_page() -> None:
        p = common()
        assert staff_report.staff_profile(engine, who, t.staff, reports.ReportFilter(p), sla)

    def customer_page() -> None:
        assert customer_report.customer_profile(engine, who, t.customer, tz) is not None

    def search_page() -> None:  # one search of each kind, as typed into the three tabs
        search.search_messages(engine, who, SEARCH_QUERIES[0], tz=tz)
        search.search_customers(engine, who, SEARCH_QUERIES[1])
        search.search_staff(engine, who, SEARCH_QUERIES[2])

    def wordlists() -> None:
        p = common()
        rules = reports.rule_table(engine, who, reports.ReportFilter(p))
        if not rules.empty:
            reports.rule_examples(engine, who, reports.ReportFilter(p), str(rules["rule"].iloc[0]))
        with session_scope(engine) as s:
            wordlist_edits.edits(s, who, lists)
            wordlist_edits.rescan_state(s)

    def export() -> None:  # the form's choices; the export itself runs on submit
        common()
        reports.scoped_org_tree(engine, who)

    def trail() -> None:
        reports.audit_trail(engine, who, (), tz=tz)

    pages: dict[str, Callable[[], Any]] = {
        "overview": overview,
        "stores": stores,
        "quality": quality,
    }
    if who.reads_messages:
        pages.update(alerts=alerts, conversation=conversation)
    pages["customers"] = customers
    if who.sees_people:
        pages.update(staff=staff_page, customer=customer_page, search=search_page)
    if who.sees_wordlists:
        pages["wordlists"] = wordlists
    if who.may_export:
        pages["export"] = export
    if who.sees_trail:
        pages["trail"] = trail
    return pages


def refresh(url: str, stats: bool = True) -> dict[str, float]:
    """The pipeline's daily stage over the seeded data: a full build, then a no-op re-run."""
    engine = make_engine(url)
    first = refresh_daily(engine)
    again = refresh_daily(engine)
    if stats:
        analyze(engine, ("conversation_facts", "store_day", "store_day_findings"))
    engine.dispose()
    print(
        f"{engine.dialect.name}: refresh_daily {first.mode} in {first.seconds:.2f} s, "
        f"re-run {again.mode} in {again.seconds:.3f} s",
        file=sys.stderr,
    )
    return {
        f"first ({first.mode})": round(first.seconds, 3),
        f"again ({again.mode})": round(again.seconds, 3),
    }


def analyze(engine: Engine, tables: Sequence[str] = ()) -> None:
    """Planner statistics, as a deployment gathers them after a load."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ANALYZE {', '.join(tables)}" if tables else "VACUUM ANALYZE"))
        else:
            for table in tables or ("",):
                conn.execute(text(f"ANALYZE {table}".strip()))


def people(city: int) -> dict[str, Principal]:
    return {
        COMPLIANCE: Principal(1, "bench-officer", Role.COMPLIANCE, None),
        SUPERVISOR: Principal(2, "bench-supervisor", Role.SUPERVISOR, (city,)),
    }


Medians = dict[str, dict[str, dict[str, float]]]  # mode -> person -> page -> seconds


def time_pages(
    url: str, runs: int, modes: Sequence[str], city: int | None
) -> tuple[Targets, Medians, Medians]:
    """Median seconds per mode, person and page: wall-clock, and this process's CPU (on
    SQLite all of the work, on PostgreSQL the client's share), which a busy machine changes
    less."""
    base = make_engine(url)
    targets = pick_targets(base, city)
    backend = base.dialect.name
    wall: Medians = {}
    cpu: Medians = {}
    for mode in modes:
        engine = base if mode == "aggregated" else reports.live(base)
        for label, who in people(targets.city).items():
            for page, run in _pages(engine, who, targets).items():
                seconds, used = _medians_of(run, runs)
                wall.setdefault(mode, {}).setdefault(label, {})[page] = round(seconds, 3)
                cpu.setdefault(mode, {}).setdefault(label, {})[page] = round(used, 3)
                flag = "" if seconds < TARGET_S else "  <-- over target"
                print(
                    f"{backend:10} {mode:10} {label:24} {page:13} {seconds:7.3f} s "
                    f"(cpu {used:6.3f} s){flag}",
                    file=sys.stderr,
                )
    base.dispose()
    return targets, wall, cpu


def _medians_of(run: Callable[[], Any], runs: int) -> tuple[float, float]:
    """The median wall-clock and CPU seconds of ``runs`` calls after a warm-up call."""
    run()  # warm: plans, connection pool, OS cache
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def given_urls(urls: Sequence[str]) -> dict[str, str]:
    """``--url``: each database by backend, once its schema is found to be this version's (the
    bench neither migrates, seeds nor refreshes it)."""
    out: dict[str, str] = {}
    for url in urls:
        engine = make_engine(url)
        path = engine.url.database or ""
        # connecting to a missing SQLite file would create it, empty
        if (
            engine.dialect.name == "sqlite"
            and path not in ("", ":memory:")
            and not Path(path).exists()
        ):
            raise SystemExit(f"--url {url}: no such database file")
        try:
            require_schema(engine)
        except DatabaseError as exc:
            raise SystemExit(
                f"{exc}\n(--url times a database as it is: not migrated here)"
            ) from exc
        finally:
            engine.dispose()
        if engine.dialect.name in out:
            raise SystemExit(f"--url: one database per backend ({engine.dialect.name} twice)")
        out[engine.dialect.name] = url
    return out


def pages_main(args: argparse.Namespace) -> None:
    base = os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT)
    result: dict[str, Any] = {
        "messages": None if args.url else args.messages,
        "runs": args.runs,
        "target_seconds": TARGET_S,
        "backends": {},
    }
    given = given_urls(args.url or [])
    for backend in given or args.backends:
        entry: dict[str, Any] = {}
        if args.url:
            url = given[backend]
            entry["database"] = "given (--url)"
        elif args.reuse:
            url = _bench_url(backend, base)
        else:
            t0 = time.perf_counter()
            stats = not args.no_analyze
            url = (
                seed_sqlite(_sqlite_path(), args.messages, stats)
                if backend == "sqlite"
                else seed(base, args.messages, stats)
            )
            entry["seed_seconds"] = round(time.perf_counter() - t0, 1)
        if not args.url:  # a given database is timed as its pipeline left it
            entry["refresh_daily_seconds"] = refresh(url, not args.no_analyze)
            entry["analyzed"] = not args.no_analyze
        load = os.getloadavg()[0]
        targets, medians, cpu = time_pages(url, args.runs, args.modes, args.scope)
        # the machine's 1-minute load before and after: timings on a shared machine vary with it
        entry["load_average"] = [round(load, 1), round(os.getloadavg()[0], 1)]
        entry["supervisor_unit"] = targets.city
        entry["median_seconds"] = medians
        entry["median_cpu_seconds"] = cpu
        over = [
            f"{mode}/{who}/{page}"
            for mode, by_who in medians.items()
            for who, by_page in by_who.items()
            for page, s in by_page.items()
            if s >= TARGET_S
        ]
        entry["over_target"] = over
        result["backends"][backend] = entry
    result.update(python=platform.python_version(), machine=platform.machine(), cpus=os.cpu_count())
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.out is None:
        return
    if args.out.exists() and not args.url:  # keep the other backend's figures of the same size
        earlier = json.loads(args.out.read_text("utf-8"))
        if earlier.get("messages") == args.messages and "backends" in earlier:
            result["backends"] = {**earlier["backends"], **result["backends"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")


def _sqlite_path() -> Path:
    return Path(tempfile.gettempdir()) / "audit_bench_dashboard.db"


def _bench_url(backend: str, base: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{_sqlite_path()}"
    return make_engine(base).url.set(database=DB_NAME).render_as_string(hide_password=False)


# --------------------------------------------------------------------------- search and queue
# ``--search``: the search page's keyword query and the alert queue's page query, on SQLite
# and on PostgreSQL.


def _median_of(run: Callable[[], Any], runs: int) -> float:
    return _medians_of(run, runs)[0]


def time_search(url: str, runs: int) -> dict[str, Any]:
    """Median search time per keyword and over the keywords; the queue's page queries."""
    engine = make_engine(url)
    people = {
        "compliance (all 300 stores)": Principal(1, "officer", Role.COMPLIANCE, None),
        # city 35: the one whose stores have alerts (city 6, the page timings' supervisor, has none)
        "supervisor (1 city, 10 stores)": Principal(2, "city", Role.SUPERVISOR, (35,)),
    }
    out: dict[str, Any] = {}
    backend = engine.dialect.name
    for label, who in people.items():
        per_keyword = {
            kw: round(_median_of(partial(search.search_messages, engine, who, kw), runs), 4)
            for kw in KEYWORDS
        }
        found = {kw: search.search_messages(engine, who, kw).total_label for kw in KEYWORDS}
        scanned = {
            kw: round(_median_of(partial(search.search_messages, engine, who, kw), runs), 4)
            for kw in SHORT_KEYWORDS
        }
        queue_pages = {
            "page 1 (open, by severity)": reports.QueueQuery(),
            "page 40 (all states, by time)": reports.QueueQuery(states=(), sort="time", page=40),
            "overdue only": reports.QueueQuery(overdue_only=True),
        }
        queue_times = {}
        for name, q in queue_pages.items():
            seconds = _median_of(partial(reports.alert_queue_page, engine, who, q), runs)
            queue_times[name] = round(seconds, 4)
        total = reports.alert_queue_page(engine, who, reports.QueueQuery(states=())).total
        median = statistics.median(per_keyword.values())
        out[label] = {
            "search_median_s": round(median, 4),
            "search_max_s": max(per_keyword.values()),
            "search_per_keyword_s": per_keyword,
            "search_found": found,
            "short_keyword_scan_s": scanned,
            "alert_queue_s": queue_times,
            "alerts_in_scope": total,
        }
        print(
            f"{backend:10} {label:32} search median {median:.3f} s "
            f"(max {max(per_keyword.values()):.3f}); queue "
            + ", ".join(f"{k}: {v:.3f} s" for k, v in queue_times.items()),
            file=sys.stderr,
        )
    engine.dispose()
    return out


def search_main(args: argparse.Namespace) -> None:
    base = os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT)
    result: dict[str, Any] = {
        "messages": args.messages,
        "runs": args.runs,
        "keywords": list(KEYWORDS),
        "target_seconds": 0.5,
        "backends": {},
    }
    given = given_urls(args.url or [])
    for backend in given or args.backends:
        t0 = time.perf_counter()
        if backend in given:
            url = given[backend]
        elif args.reuse:
            url = _bench_url(backend, base)
        elif backend == "sqlite":
            url = seed_sqlite(_sqlite_path(), args.messages)
        else:
            url = seed(base, args.messages)
        seeded = time.perf_counter() - t0
        timed = time_search(url, args.runs)
        # a reused or given database was seeded elsewhere: no seeding time to report
        fresh = not (args.reuse or given)
        result["backends"][backend] = (
            {"seed_seconds": round(seeded, 1), **timed} if fresh else timed
        )
    result.update(python=platform.python_version(), machine=platform.machine(), cpus=os.cpu_count())
    if given:
        result["messages"] = None
    print(json.dumps(result, ensure_ascii=False, indent=2))
    out = args.out
    if out is None:
        return
    if out.exists() and not given:  # keep the other backend's figures of the same size
        earlier = json.loads(out.read_text("utf-8"))
        if earlier.get("messages") == args.messages:
            result["backends"] = {**earlier.get("backends", {}), **result["backends"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="time the bench databases again")
    parser.add_argument(
        "--url",
        nargs="+",
        metavar="URL",
        help="time these databases as they are (no seeding, no migration, no refresh; "
        "one per backend; the schema must be this version's)",
    )
    parser.add_argument(
        "--scope",
        type=int,
        metavar="UNIT",
        help="the supervisor's org unit (default: the parent of the store with the most alerts)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="no ANALYZE after seeding: the planner as on a fresh load (PostgreSQL's "
        "autovacuum may still gather statistics meanwhile)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("live", "aggregated"),
        default=["aggregated", "live"],
        help="aggregated: as the pages read once the daily stage has run (from its tables when "
        "they are fresh); live: every report from the base tables",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="results file (default: results/dashboard.json, results/dashboard-search.json "
        "with --search; none with --url)",
    )
    parser.add_argument(
        "--search",
        action="store_true",
        help="time the search and alert-queue queries instead (results: dashboard-search.json)",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    results = Path(__file__).with_name("results")
    if args.out is None and not args.url:
        args.out = results / ("dashboard-search.json" if args.search else "dashboard.json")
    if args.search:
        search_main(args)
    else:
        pages_main(args)


if __name__ == "__main__":
    main()
