"""Progress of an index build: `progress(done, total)` while embedding, and named steps.

A build reports the sentences it has embedded by calling `progress(done, total)`. A display
that also shows the build's other long steps (loading the model, writing the index, exporting
the model) has a `step(label)` method; `say_step` calls it, and does nothing for a plain callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

Progress = Callable[[int, int], None]


@runtime_checkable
class Steps(Protocol):
    """A progress display that shows named steps too."""

    def __call__(self, done: int, total: int) -> None: ...

    def step(self, label: str) -> None: ...


def say_step(progress: Progress | None, label: str) -> None:
    """Tell `progress` that a step starts, if it shows steps."""
    if isinstance(progress, Steps):
        progress.step(label)
