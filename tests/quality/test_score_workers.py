"""The scoring stage computes its batches in forked processes (``[quality] workers``) and
writes them in order in the stage's own process: the scores are those of one process, on
both databases, whatever the batch size and however many batches are in flight."""

from __future__ import annotations

from typing import Any

import pytest
from simfixtures import SimArchive
from sqlalchemy import Engine, delete, select

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.sources import SimulatedServer
from audit.config import load_settings
from audit.pipeline import load_card, load_scanner, run
from audit.quality.stage import score_conversations
from audit.store.db import make_engine, session_scope
from audit.store.models import Score

pytestmark = pytest.mark.slow


def _scores(engine: Engine) -> list[tuple[Any, ...]]:
    with session_scope(engine) as session:
        return [
            tuple(r)
            for r in session.execute(
                select(
                    Score.conversation_id,
                    Score.scorecard_version,
                    Score.score,
                    Score.deductions,
                    Score.metrics,
                ).order_by(Score.conversation_id, Score.scorecard_version)
            )
        ]


def test_scores_computed_in_forked_processes_are_those_of_one(
    db_url: str, sim_archive: SimArchive
) -> None:
    settings = load_settings(
        None, environ={}, overrides={"archive": {"workers": 1}, "quality": {"workers": 1}}
    )
    keys = KeyRing.from_files(simulator.key_files(sim_archive.directory))
    engine = make_engine(db_url)
    try:
        report = run(
            settings, engine, SimulatedServer(sim_archive.directory), keys, load_scanner(settings)
        )
        expected = _scores(engine)
        assert len(expected) == report.scores.conversations > 100
        card = load_card(settings)
        for workers, batch in ((2, 7), (3, 50), (2, 10_000)):
            with session_scope(engine) as session:
                session.execute(delete(Score))
            stats = score_conversations(
                engine, card, settings.quality, batch_size=batch, workers=workers
            )
            assert _scores(engine) == expected, (workers, batch)
            assert (stats.conversations, stats.fatal, stats.mean_score) == (
                report.scores.conversations,
                report.scores.fatal,
                report.scores.mean_score,
            )
    finally:
        engine.dispose()
