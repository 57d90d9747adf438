"""``audit export packs|training`` through click, on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from qa_world import PHONE, World, seed_world

from audit.cli.export import export_group
from audit.store.db import make_engine


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    @click.option("--db")
    @click.pass_context
    def group(ctx: click.Context, db: str) -> None:
        ctx.ensure_object(dict).update(config=None, db=db)

    group.add_command(export_group)
    return group


def test_packs_to_xlsx_file(sqlite_url: str, cli: click.Group, tmp_path: Path) -> None:

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


def test_training_to_stdout_and_unmask_refused(db_url: str, world: World, cli: click.Group) -> None:
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


def test_choices_match_the_library() -> None:
    from audit.cli import export as command
    from audit.export import run
    from audit.store.models import AlertState

    assert command.FORMATS == run.FORMATS
    assert tuple(s.value for s in AlertState) == command.STATES
