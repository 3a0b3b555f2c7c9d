"""Where a job (or a part of a split job) stands: its stored phase, and the one table of the
moves between phases.

Each step that moves a job writes its phase (JobStore.move_phase): the phase is what people see
(`dropcut ls`, `show`, `watch`), what `dropcut ls --status` filters on and what the job events
carry, so nothing works it out again from which fields happen to be set. A move the table does
not allow (for example `stitching` -> `in_line`: a step repeated after the job moved on) is
refused by the conditional write and counted (`PhaseMovesRefused`); it never fails a step.

```
waiting_for_manifest -> queued -> received -> preparing -> in_line -> at_provider -> storing -> stitching -> done
                                                        \\-> editing (a split job: its parts move) -/
a part:                           received ------------------> in_line -> at_provider -> storing -> edited
any phase but the endings -> failed | cancelled
```
"""

from __future__ import annotations

from enum import StrEnum


class JobPhase(StrEnum):
    """A job's or a part's phase (the jobs table's `phase`)."""

    WAITING_FOR_MANIFEST = "waiting_for_manifest"
    #: In the backlog: no execution yet, nothing paid, no clock (dropcut.aws.backlog).
    QUEUED = "queued"
    #: Admitted: its execution starts.
    RECEIVED = "received"
    PREPARING = "preparing"
    #: In line for a provider slot (or the daily budget).
    IN_LINE = "in_line"
    #: Its task is being created or runs at the provider.
    AT_PROVIDER = "at_provider"
    #: The provider reported success: the result is being copied.
    STORING = "storing"
    #: A split job whose parts are being edited (each part has its own phase).
    EDITING = "editing"
    #: A part whose edited video is kept for Stitch (a part's ending).
    EDITED = "edited"
    STITCHING = "stitching"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The phase as people read it: `in line`, `at provider`."""
        return self.value.replace("_", " ")

    @property
    def ended(self) -> bool:
        """True for a job's or a part's ending (nothing moves it again)."""
        return self in ENDINGS


ENDINGS = frozenset({JobPhase.DONE, JobPhase.EDITED, JobPhase.FAILED, JobPhase.CANCELLED})
_ENDS = frozenset({JobPhase.FAILED, JobPhase.CANCELLED})

#: The one table of moves: phase -> the phases it may move to. A phase may be written again
#: (a retried step) where it lists itself.
MOVES: dict[JobPhase, frozenset[JobPhase]] = {
    JobPhase.WAITING_FOR_MANIFEST: frozenset({JobPhase.QUEUED, JobPhase.RECEIVED}) | _ENDS,
    JobPhase.QUEUED: frozenset({JobPhase.QUEUED, JobPhase.RECEIVED}) | _ENDS,
    JobPhase.RECEIVED: frozenset({JobPhase.PREPARING, JobPhase.IN_LINE, JobPhase.EDITING}) | _ENDS,
    JobPhase.PREPARING: frozenset({JobPhase.PREPARING, JobPhase.IN_LINE, JobPhase.EDITING}) | _ENDS,
    JobPhase.EDITING: frozenset({JobPhase.STITCHING}) | _ENDS,
    JobPhase.IN_LINE: frozenset({JobPhase.IN_LINE, JobPhase.AT_PROVIDER}) | _ENDS,
    # A part whose task failed gets a new one (TaskRetried): at the provider again.
    JobPhase.AT_PROVIDER: frozenset({JobPhase.AT_PROVIDER, JobPhase.STORING}) | _ENDS,
    JobPhase.STORING: frozenset({JobPhase.STORING, JobPhase.EDITED, JobPhase.STITCHING}) | _ENDS,
    JobPhase.STITCHING: frozenset({JobPhase.STITCHING, JobPhase.DONE}) | _ENDS,
    JobPhase.DONE: frozenset(),
    JobPhase.EDITED: frozenset(),
    # A job refused for its options is started again by a new manifest (dropcut.steps.submit).
    JobPhase.FAILED: frozenset({JobPhase.QUEUED, JobPhase.RECEIVED}),
    JobPhase.CANCELLED: frozenset(),
}


#: Words people already use for a phase: a job's `succeeded` status is its `done` phase.
_ALIASES = {"succeeded": JobPhase.DONE.value}


def parse_phase(text: str) -> JobPhase:
    """`in line`, `in_line` or `in-line` -> JobPhase.IN_LINE (`succeeded`, the status, ->
    `done`); ValueError naming the phases."""
    wanted = text.strip().lower().replace(" ", "_").replace("-", "_")
    wanted = _ALIASES.get(wanted, wanted)
    try:
        return JobPhase(wanted)
    except ValueError:
        names = ", ".join(phase.label for phase in JobPhase)
        raise ValueError(f"{text!r} is not a phase; one of: {names}") from None


def sources_of(phase: JobPhase) -> frozenset[JobPhase]:
    """The phases that may move to `phase` (MOVES read backwards)."""
    return frozenset(source for source, targets in MOVES.items() if phase in targets)
