"""A progress bar for one long file: drawn on stderr where a person watches, otherwise silent."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator


def wanted() -> bool:
    """Whether to draw bars: stderr is a terminal, or ``FOLEYSEAL_PROGRESS`` is set (tests, logs)."""
    from rich.console import Console

    return Console(stderr=True).is_terminal or bool(os.environ.get("FOLEYSEAL_PROGRESS"))


@contextlib.contextmanager
def file_progress(description: str) -> Iterator[Callable[[str, float], None]]:
    """Yield ``report(stage, share)``: ``share`` (0-1) of the file done in ``stage`` ("marking",
    "reading back", "detecting"), one bar per stage, on stderr; nothing is drawn when not
    :func:`wanted`. The bars stay on a terminal so that a finished run shows what it did."""
    if not wanted():
        yield lambda stage, share: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, share: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage} {description}", total=1.0)
            bar.update(tasks[stage], completed=share)

        yield report
