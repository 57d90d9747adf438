"""Alert precision against a simulated archive's ground truth, on a chain with known alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from seed_chain import seed_chain
from sqlalchemy import Engine, select

from audit.alert_precision import GroundTruthError, alert_precision, load_ground_truth
from audit.store.db import session_scope
from audit.store.models import Alert, Conversation, Severity


def _truth(directory: Path, rows: dict[str, list[str]]) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "ground_truth.jsonl").write_text(
        "".join(
            json.dumps({"msgid": m, "violations": [{"category": c} for c in cats]}) + "\n"
            for m, cats in rows.items()
        ),
        encoding="utf-8",
    )
    return directory


def test_alerts_are_judged_by_message_or_conversation(engine: Engine, tmp_path: Path) -> None:
    # seed_chain: alerts on msg1 (privacy), msg5 (abuse), msg6 (complaint); msg3 in
    # conversation 1 holds a diversion and a promise finding but raised no alert.
    seed_chain(engine)
    with session_scope(engine) as session:
        conv1 = session.scalars(select(Conversation.id).order_by(Conversation.id)).first()
        session.add_all(
            [  # an incident alert without a finding, and a quality alert
                Alert(dedupe_key="x1", category="promise", severity=Severity.LOW, title="t",
                      conversation_id=conv1),
                Alert(dedupe_key="x2", kind="quality", category="quality",
                      severity=Severity.LOW, title="t", conversation_id=conv1),
            ]
        )  # fmt: skip
    truth = _truth(
        tmp_path / "sim",
        {
            "msg1": ["privacy"],  # alerted: right
            "msg3": ["diversion", "promise"],  # diversion missed, promise by its conversation
            "msg5": ["fraud"],  # the abuse alert is wrong and the fraud is missed
            "msg99": ["privacy"],  # not in the database: not counted
        },
    )

    report = alert_precision(engine, truth)

    rows = {s.category: (s.labels, s.found, s.findings, s.correct) for s in report.categories}
    assert rows == {
        "privacy": (1, 1, 1, 1),
        "diversion": (1, 0, 0, 0),
        "promise": (1, 1, 1, 1),
        "abuse": (0, 0, 1, 0),
        "complaint": (0, 0, 1, 0),  # msg6 had nothing injected
        "fraud": (1, 0, 0, 0),
        "illegal": (0, 0, 0, 0),
    }
    assert (report.overall.precision, report.overall.recall) == (0.5, 0.5)
    assert (report.injected, report.missing_messages, report.unjudged) == (4, 1, 1)
    data = report.as_dict()
    assert data["overall"] == {
        "category": "overall", "injected": 4, "found": 2, "alerts": 4, "correct": 2,
        "precision": 0.5, "recall": 0.5,
    }  # fmt: skip
    assert "overall" in report.format() and "1 quality alerts not judged" in report.format()


def test_when_the_database_holds_none_of_the_archive_then_it_says_so(
    engine: Engine, tmp_path: Path
) -> None:
    truth = _truth(tmp_path / "sim", {"other1": ["abuse"]})

    with pytest.raises(GroundTruthError, match="holds none of the 1 messages"):
        alert_precision(engine, truth)


def test_when_the_ground_truth_is_missing_or_bad_then_it_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match="no ground truth here"):
        load_ground_truth(tmp_path)
    (tmp_path / "ground_truth.jsonl").write_text('{"msgid": "a", "violations": []}\n{"x"\n')

    with pytest.raises(GroundTruthError, match=r"ground_truth.jsonl:2: bad line"):
        load_ground_truth(tmp_path)
