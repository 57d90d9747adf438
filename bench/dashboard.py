"""Dashboard query time on PostgreSQL: 1,000,000 messages, 300 stores, 3,000 staff.

Seeds a database of its own (``audit_bench_dashboard``, dropped and re-made each run) with
``INSERT ... SELECT generate_series`` on the server (a minute, not an hour), runs the
migrations first so the schema and indexes are exactly the shipped ones, then times each
page's data queries (the :mod:`audit.reports` calls the page makes, no Streamlit and
no cache) as a compliance officer (every store) and as a city supervisor, median of N runs.

After seeding it runs the pipeline's last stage, :func:`audit.store.daily.refresh_daily`
(timed), then times every page twice: ``live`` (the reports computed from the base tables,
as before the pre-aggregated tables existed) and ``aggregated`` (read from them, as the
dashboard does once the stage has run).

    python bench/dashboard.py                       # 1,000,000 messages, 5 runs
    python bench/dashboard.py --messages 100000 --runs 3
    python bench/dashboard.py --reuse               # keep the seeded database, time again
    python bench/dashboard.py --reuse --modes aggregated
    AUDIT_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/dashboard.py
    python bench/dashboard.py --search              # search and alert queue, SQLite and PostgreSQL
    python bench/dashboard.py --search --backends sqlite --messages 100000

``--search`` times the search page's keyword query (median over :data:`KEYWORDS`, each the
median of N runs) and the alert queue's page queries, on SQLite (seeded in SQL, same shape, in
the temporary directory) and PostgreSQL, into ``results/dashboard-search.json``.

Shape: 5 regions > 30 cities > 300 stores, 10 staff per store, 50,000 customers, one
conversation per 10 messages over 30 days (every store busy every day), a finding on 1
message in 100 and an alert on a third of those (a tenth of them reviewed), a score per
conversation, 2 tag groups x 4 tags on half the customers, and a follow with one of 6
channels per (staff, customer) pair.
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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from audit import reports, search
from audit.quality.metrics import BusinessClock
from audit.reports import customer, quality, staff
from audit.store.access import Principal
from audit.store.daily import refresh_daily
from audit.store.db import make_engine, migrate
from audit.store.models import Role

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
    "INSERT INTO user_scopes (user_id, org_unit_id) VALUES (2, 6)",
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


def seed(base_url: str, messages: int) -> str:
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
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"seeded {messages:,} messages in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    engine.dispose()
    return url


def _pages(engine: Engine, who: Principal) -> dict[str, Callable[[], Any]]:
    whole = reports.ReportFilter(reports.Period(START, START + dt.timedelta(days=DAYS - 1)))
    last = whole.period.end
    with engine.connect() as conn:
        conv = conn.execute(
            text("SELECT id FROM conversations WHERE org_unit_id = 36 ORDER BY id LIMIT 1")
        ).scalar_one()

    def overview() -> None:
        reports.data_period(engine)
        reports.scoped_org_tree(engine, who)
        reports.overview(engine, who, whole.period, None, last)

    def stores() -> None:
        reports.store_ranking(engine, who, whole, "store")
        reports.staff_table(engine, who, whole, 36)

    def alerts() -> None:
        reports.alert_queue_page(engine, who, reports.QueueQuery(period=whole.period))

    def conversation() -> None:
        view = reports.open_conversation(engine, who, conv)
        assert view is not None
        reports.conversation_alerts(engine, who, conv)

    def customers() -> None:
        reports.tag_table(engine, who, whole)
        reports.channel_table(engine, who, whole)

    def wordlists() -> None:
        reports.rule_table(engine, who, whole)
        reports.rule_examples(engine, who, whole, "rule1")

    def trail() -> None:
        reports.audit_trail(engine, who)

    clock = BusinessClock.parse("09:00-21:00")
    week = reports.ReportFilter(reports.Period(last - dt.timedelta(days=6), last))
    now = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(4), tzinfo=dt.UTC)

    def quality_page() -> None:
        quality.staff_quality(engine, who, week, clock, 5, now)  # runs waiting_now once
        quality.daily_trend(engine, who, week)

    def staff_page() -> None:
        # staff 301 works at store 36 (in both people's scope), as conversation 301 does
        assert staff.staff_profile(engine, who, 301, whole, 5) is not None

    def customer_page() -> None:
        assert customer.customer_profile(engine, who, 2108) is not None  # conversation 301's

    return {
        "overview": overview,
        "stores": stores,
        "alerts": alerts,
        "conversation": conversation,
        "customers": customers,
        "wordlists": wordlists,
        "trail": trail,
        "quality (7 days)": quality_page,
        "staff": staff_page,
        "customer": customer_page,
    }


def refresh(url: str) -> dict[str, float]:
    """The pipeline's daily stage over the seeded data: a full build, then a no-op re-run."""
    engine = make_engine(url)
    migrate(engine)  # a --reuse database may predate the pre-aggregated tables
    first = refresh_daily(engine)
    again = refresh_daily(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE conversation_facts, store_day, store_day_findings"))
    engine.dispose()
    print(
        f"refresh_daily: {first.mode} in {first.seconds:.2f} s, re-run {again.mode} "
        f"in {again.seconds:.3f} s",
        file=sys.stderr,
    )
    return {
        f"first ({first.mode})": round(first.seconds, 3),
        f"again ({again.mode})": round(again.seconds, 3),
    }


def time_pages(url: str, runs: int, aggregated: bool = True) -> dict[str, dict[str, float]]:
    engine = make_engine(url) if aggregated else reports.live(make_engine(url))
    people = {
        "compliance (all 300 stores)": Principal(1, "officer", Role.COMPLIANCE, None),
        "supervisor (1 city, 10 stores)": Principal(2, "city", Role.SUPERVISOR, (6,)),
    }
    out: dict[str, dict[str, float]] = {}
    for label, who in people.items():
        for page, run in _pages(engine, who).items():
            if (page == "trail" and not who.sees_trail) or (
                page == "wordlists" and not who.sees_wordlists
            ):
                continue
            run()  # warm: plans, connection pool, OS cache
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            out.setdefault(label, {})[page] = round(statistics.median(times), 3)
            flag = "" if statistics.median(times) < TARGET_S else "  <-- over target"
            mode = "aggregated" if aggregated else "live"
            print(
                f"{mode:10} {label:32} {page:14} {statistics.median(times):7.3f} s{flag}",
                file=sys.stderr,
            )
    engine.dispose()
    return out


# --------------------------------------------------------------------------- search and queue
# ``--search``: the search page's keyword query and the alert queue's page query, on SQLite
# (the embedded default, seeded below with the same shape) and on PostgreSQL.


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
]


def seed_sqlite(path: Path, messages: int) -> str:
    """The shape of :data:`SEED` for what search and the queue read, built in SQLite."""
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
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    seconds = time.perf_counter() - t0
    print(f"sqlite: seeded {messages:,} messages in {seconds:.1f} s", file=sys.stderr)
    engine.dispose()
    return url


def _median_of(run: Callable[[], Any], runs: int) -> float:
    run()  # warm
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    for backend in args.backends:
        t0 = time.perf_counter()
        if backend == "sqlite":
            path = Path(tempfile.gettempdir()) / "audit_bench_dashboard.db"
            url = f"sqlite:///{path}" if args.reuse else seed_sqlite(path, args.messages)
        elif args.reuse:
            url = make_engine(base).url.set(database=DB_NAME).render_as_string(hide_password=False)
        else:
            url = seed(base, args.messages)
        seeded = time.perf_counter() - t0
        timed = time_search(url, args.runs)
        # a reused database was seeded by an earlier run: no seeding time to report
        result["backends"][backend] = (
            timed if args.reuse else {"seed_seconds": round(seeded, 1), **timed}
        )
    result.update(python=platform.python_version(), machine=platform.machine(), cpus=os.cpu_count())
    out = args.out.with_name("dashboard-search.json")
    if out.exists():  # keep the other backend's figures from an earlier run of the same size
        earlier = json.loads(out.read_text("utf-8"))
        if earlier.get("messages") == args.messages:
            result["backends"] = {**earlier.get("backends", {}), **result["backends"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="time the existing bench database")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("live", "aggregated"),
        default=["live", "aggregated"],
        help="live: reports from the base tables; aggregated: from the daily tables",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "dashboard.json"
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
    if args.search:
        search_main(args)
        return
    base = os.environ.get("AUDIT_BENCH_PG_URL", PG_DEFAULT)
    if args.reuse:
        url = make_engine(base).url.set(database=DB_NAME).render_as_string(hide_password=False)
    else:
        url = seed(base, args.messages)
    refreshed = refresh(url)
    medians = {mode: time_pages(url, args.runs, mode == "aggregated") for mode in args.modes}
    result = {
        "messages": args.messages,
        "stores": 300,
        "staff": 3000,
        "runs": args.runs,
        "target_seconds": TARGET_S,
        "refresh_daily_seconds": refreshed,
        "median_seconds": medians,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
