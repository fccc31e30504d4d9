"""SympoziumSchedule: creates AgentRuns for an instance on a cron schedule."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from .common import (
    Condition,
    SympoziumModel,
    Time,
    _empty_to_none,
    _Resource,
)


class SchedulePhase(StrEnum):
    """Phase of a SympoziumSchedule."""

    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    ERROR = "Error"


class SympoziumScheduleSpec(SympoziumModel):
    """When to run which task for which instance."""

    instance_ref: str
    """SympoziumInstance (same namespace) to run."""
    schedule: str
    """5-field cron expression (no seconds, no @descriptors)."""
    task: str
    """Task given at each run."""
    type: Literal["heartbeat", "scheduled", "sweep"] = "scheduled"
    """heartbeat, scheduled or sweep."""
    suspend: bool | None = None
    """Stop creating runs."""
    concurrency_policy: Literal["Forbid", "Allow", "Replace"] = "Forbid"
    """What to do when the previous run is still going."""
    include_memory: bool = True
    """Give the run the instance's memory."""


class SympoziumScheduleStatus(SympoziumModel):
    """Observed state of a schedule."""

    phase: Annotated[SchedulePhase | None, BeforeValidator(_empty_to_none)] = None
    """Active, Suspended or Error."""
    last_run_time: Time | None = None
    """When the last run was created."""
    next_run_time: Time | None = None
    """When the next run is due."""
    last_run_name: str | None = None
    """Name of the last run created."""
    total_runs: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    """Runs created so far."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class SympoziumSchedule(_Resource):
    """Creates AgentRuns for an instance on a cron schedule."""

    KIND: ClassVar[str] = "SympoziumSchedule"

    kind: str = "SympoziumSchedule"
    spec: SympoziumScheduleSpec
    status: SympoziumScheduleStatus | None = None
