"""Progress reporting for long jobs, the one convention of ``pipelines``.

Two shapes, for two kinds of work: a job made of a few named steps takes a :data:`Progress` (told
each step as it starts; ``logger.info`` by default, the CLI's echo when run by hand); a job over
many like items takes a :data:`ProgressFactory` and advances a count (the CLI passes a rich bar,
tests :func:`no_progress`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Progress = Callable[[str], None]
Advance = Callable[[int], None]
ProgressFactory = Callable[[int, str], AbstractContextManager[Advance]]


@contextmanager
def no_progress(total: int, label: str) -> Iterator[Advance]:
    """For tests and library callers: count nothing, print nothing."""
    yield lambda done: None


@contextmanager
def rich_progress(total: int, label: str) -> Iterator[Advance]:
    """A rich progress bar on stderr, advanced by the number of items done per step."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.advance(task, done)
