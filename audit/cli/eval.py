"""``audit eval``: precision and recall on the labelled sets, and of a simulated run's alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from audit.cli.context import App, pass_app


@click.command(name="eval")
@click.option(
    "--data",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled JSON lines, repeatable (default: both halves of tests/data/eval/v2 and "
    "of tests/data/eval/v3).",
)
@click.option(
    "--simulated",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Simulated archive directory: judge the database's alerts by its ground truth, "
    "and its picture findings by the pictures' truth.",
)
@click.option("--misses", default=20, show_default=True, help="Errors listed per set.")
@click.option(
    "--with-detectors",
    is_flag=True,
    help="Add the paraphrase detectors' findings (model.<category>) to the scanner's.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def eval_cmd(
    app: App,
    data: tuple[Path, ...],
    simulated: Path | None,
    misses: int,
    with_detectors: bool,
    as_json: bool,
) -> None:
    """Precision and recall per category and technique, false alarms on clean messages.

    The errors of a test half (test.jsonl) are never shown: tune against the tuning half.
    With one --data, --json prints that set's report; otherwise {"sets": [...],
    "simulated": {...}, "simulated_images": {...}}. With --simulated, the pictures are judged
    too (QR codes, OCR text: recall per kind, false alarms on ordinary pictures), unless the
    archive was simulated without pictures.

    \b
    Example:
      audit eval                           # v2 and v3, tuning and test halves
      audit eval --data tests/data/eval/v3/tuning.jsonl --misses 50
      audit eval --simulated data/sim      # after `audit run` on that archive
      audit eval --with-detectors          # what the scan stage and inspect report
    """
    from audit.alert_precision import alert_precision
    from audit.pipeline import load_classifiers, load_scanner
    from audit.quality.detectors import DetectingScanner
    from audit.scan.evaluate import DEFAULT_HALVES, MessageScanner, evaluate

    paths = data or (() if simulated else DEFAULT_HALVES)
    reports = []
    if paths:
        scanner: MessageScanner = load_scanner(app.settings)
        if with_detectors:
            scorers = load_classifiers(app.settings)
            if scorers is None or scorers.detectors is None:
                raise click.ClickException("the detectors are not trained: run `audit train`")
            scanner = DetectingScanner(scanner, scorers.detectors, scorers.versions["detectors"])
        reports = [evaluate(scanner, path) for path in paths]
    truth = alert_precision(app.engine(), simulated) if simulated else None
    pictures = _pictures(app, simulated) if simulated else None
    if as_json:
        if len(reports) == 1 and truth is None:
            click.echo(json.dumps(reports[0].as_dict(), ensure_ascii=False))
            return
        out: dict[str, Any] = {"sets": [r.as_dict() for r in reports]}
        out["simulated"] = truth.as_dict() if truth else None
        out["simulated_images"] = pictures.as_dict() if pictures else None
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    texts = [r.format(misses) for r in reports] + ([truth.format()] if truth else [])
    texts += [pictures.format()] if pictures else []
    click.echo("\n\n".join(texts))


def _pictures(app: App, simulated: Path) -> Any:
    """The picture report, or None (said on stderr) for an archive without pictures."""
    from audit.archive.simulator.pictures import IMAGE_TRUTH_FILE

    if not (simulated / IMAGE_TRUTH_FILE).is_file():
        click.echo(f"{simulated}: no {IMAGE_TRUTH_FILE} (simulated without pictures)", err=True)
        return None
    from audit.images.evaluate import image_truth_report

    return image_truth_report(app.engine(), simulated)
