"""The stores page: org units ranked by their finding rate, and the staff of a unit."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, null, select

from audit.reports.common import ReportFilter, ancestor_of_kind, names_key, org_tree, scoped
from audit.reports.figures import Conversations, conversation_id, measures, per_1k, store_table
from audit.store.access import AccessDenied, Principal, person_name
from audit.store.models import OrgUnit, Staff

LEVELS = ("region", "city", "store")
RANKING_COLUMNS = [
    "unit_id",
    "unit",
    "messages",
    "conversations",
    "findings",
    "findings_per_1k",
    "alerts_open",
    "score_avg",
    "scored",
    "sla_rate",
    "response_median_s",
    "negative_rate",
]


def store_ranking(
    engine: Engine, principal: Principal, f: ReportFilter, level: str = "store"
) -> pd.DataFrame:
    """Org units of ``level`` ranked by findings per 1,000 messages, worst first.

    Messages and findings by when they were sent (as on the overview), summed over the
    unit's stores; scores, SLA, response medians and negative rates are the measures of the
    conversations that started in the period at the unit's stores (:func:`figures.measures`,
    the same definition at every level).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    f = scoped(engine, principal, f)
    nodes = {n.id: n for n in org_tree(engine)}
    stores = store_table(engine, f)
    stores = stores[stores["org_unit_id"].notna()]
    stores = stores.assign(key=stores["org_unit_id"].astype("int64"))
    if level == "store":
        unit_of = {int(k): int(k) for k in stores["key"]}
    else:
        found = {n.id: ancestor_of_kind(nodes, n.id, level) for n in nodes.values()}
        unit_of = {int(k): a for k in stores["key"] if (a := found.get(int(k))) is not None}
    stores = stores[stores["key"].isin(list(unit_of))]
    counted = (
        stores.assign(unit_id=[unit_of[int(k)] for k in stores["key"]])
        .groupby("unit_id")[["messages", "conversations", "findings", "alerts_open"]]
        .sum()
    )
    with engine.connect() as conn:
        measured = measures(conn, f, _keyed_by_unit(unit_of, level == "store"))
    out = counted.join(
        measured[["score_avg", "scored", "sla_rate", "response_median_s", "negative_rate"]],
        how="left",
    ).reset_index()
    out["scored"] = out["scored"].fillna(0).astype("int64")
    out["unit"] = [nodes[int(i)].name for i in out["unit_id"]]
    out["findings_per_1k"] = per_1k(out)
    out = out.reindex(columns=RANKING_COLUMNS)
    out["unit_id"] = out["unit_id"].astype("int64")
    for column in ("messages", "conversations", "findings", "alerts_open"):
        out[column] = out[column].astype("int64")
    for column in ("findings_per_1k", "score_avg", "sla_rate", "response_median_s"):
        out[column] = out[column].astype(float)
    out["negative_rate"] = out["negative_rate"].astype(float)
    out["label"] = [nodes[int(i)].label for i in out["unit_id"]]
    return out.sort_values(
        ["findings_per_1k", "findings", "label"], ascending=[False, False, True], na_position="last"
    ).reset_index(drop=True)


def _keyed_by_unit(unit_of: dict[int, int], stores: bool) -> Any:
    """Conversations keyed by the ranked unit their store belongs to (``NULL`` outside)."""

    def keyed(c: Conversations) -> Any:
        if stores:
            key: Any = c.org_unit_id
        else:
            by_unit: dict[int, list[int]] = {}
            for store, unit in sorted(unit_of.items()):
                by_unit.setdefault(unit, []).append(store)
            whens = [(c.org_unit_id.in_(members), unit) for unit, members in by_unit.items()]
            key = case(*whens, else_=None) if whens else null()
        return select(key.label("key"), conversation_id(c))

    return keyed


def staff_table(
    engine: Engine, principal: Principal, f: ReportFilter, unit_id: int | None = None
) -> pd.DataFrame:
    """Staff of the units in scope (or below ``unit_id``), worst finding rate first.

    Names are pseudonymised for analysts; viewers get no per-person rows at all.
    """
    if not principal.sees_people:
        raise AccessDenied("this role sees aggregates only")
    f = scoped(engine, principal, ReportFilter(f.period, None if unit_id is None else (unit_id,)))
    with engine.connect() as conn:
        measured = measures(
            conn,
            f,
            lambda c: select(c.staff_id.label("key"), conversation_id(c)).where(
                c.staff_id.is_not(None)
            ),
        )
        if measured.empty:
            return measured.reset_index().assign(staff="", store="")
        people = conn.execute(
            select(Staff.id, Staff.name, Staff.userid, OrgUnit.name)
            .outerjoin(OrgUnit, OrgUnit.id == Staff.org_unit_id)
            .where(Staff.id.in_([int(i) for i in measured.index]))
        ).all()
    key = names_key(principal)
    names = {
        i: (person_name(principal, "staff", i, f"{n} ({u})", key), store or "")
        for i, n, u, store in people
    }
    out = measured.reset_index().rename(columns={"key": "staff_id"})
    out.insert(1, "staff", [names.get(int(i), ("?", ""))[0] for i in out["staff_id"]])
    out.insert(2, "store", [names.get(int(i), ("?", ""))[1] for i in out["staff_id"]])
    if not principal.sees_names:
        out = out.drop(columns="staff_id")
    return out.sort_values(
        ["findings_per_1k", "findings"], ascending=False, na_position="last"
    ).reset_index(drop=True)
