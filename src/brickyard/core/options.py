"""The base of every task kind's options (and of option groups the engines read, such as
the raw-file reader's)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TaskOptions(BaseModel):
    """Base of every kind's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
