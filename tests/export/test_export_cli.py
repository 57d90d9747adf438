"""``audit export packs|training`` through click, on a real database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook
from qa_world import PHONE, World, seed_world

from audit.cli import cli
from audit.store.db import make_engine


def test_packs_to_xlsx_file(sqlite_url: str, tmp_path: Path) -> None:

    seed_world(make_engine(sqlite_url))
    out = tmp_path / "qa" / "worst.xlsx"
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            sqlite_url,
            "export",
            "packs",
            "--from",
            "2026-11-17",
            "--worst",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 conversations, 6 messages" in result.output and "masked" in result.output
    assert load_workbook(out).sheetnames[0] == "对话"
    assert not list(out.parent.glob("*.partial"))


def test_training_to_stdout_and_unmask_refused(db_url: str, world: World) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", db_url, "export", "training", "--out", "-"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    refused = runner.invoke(
        cli, ["--db", db_url, "export", "packs", "--format", "jsonl", "--out", "-", "--unmask"]
    )
    assert refused.exit_code == 1 and "named user" in refused.output
    allowed = runner.invoke(
        cli,
        [
            "--db",
            db_url,
            "export",
            "packs",
            "--format",
            "jsonl",
            "--out",
            "-",
            "--unmask",
            "--as",
            "comp1",
        ],
    )
    assert allowed.exit_code == 0 and PHONE in allowed.stdout


def test_choices_are_the_library_s() -> None:
    from audit.export.run import FORMATS
    from audit.store.models import AlertState

    packs = cli.commands["export"].commands["packs"]  # type: ignore[attr-defined]
    params = {p.name: p for p in packs.params}
    assert tuple(params["fmt"].type.choices) == FORMATS  # type: ignore[attr-defined]
    states = tuple(params["states"].type.choices)  # type: ignore[attr-defined]
    assert states == tuple(s.value for s in AlertState)
