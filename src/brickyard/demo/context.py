"""What the demo's steps share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from brickyard.workspace import Workspace


class Reporter(Protocol):
    """Where the demo tells a person what it does (the CLI prints with rich)."""

    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def table(self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


@dataclass
class DemoContext:
    """What the steps share: the workspace, the options, the runs made (pipeline -> run id)
    and the shell lines for 'try next' (run from inside the workspace)."""

    workspace: Workspace
    rows: int
    seed: int
    report: Reporter
    try_next: list[str] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)


Step = Callable[[DemoContext], None]
