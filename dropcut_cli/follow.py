"""Following jobs until they end: a live Rich table on stderr (or quietly, for --json)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from rich.live import Live

from dropcut.model.jobs import JobRecord
from dropcut_cli.display import err, jobs_table
from dropcut_cli.jobs import JobReader, Phase

#: How often the jobs table (and the slot line) is read.
POLL_SECONDS = 1.0

Row = tuple[str, str, Phase]


class Followed:
    """The jobs followed, by job id: their latest record and phase."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.records: dict[str, JobRecord | None] = dict.fromkeys(labels)
        self.phases: dict[str, Phase] = {}

    @property
    def ended(self) -> bool:
        return len(self.phases) == len(self.labels) and all(p.ended for p in self.phases.values())

    def rows(self) -> list[Row]:
        return [
            (label, job_id, self.phases.get(job_id, Phase("uploaded")))
            for job_id, label in self.labels.items()
        ]

    def refresh(self, reader: JobReader) -> None:
        line = reader.line()
        for job_id in self.labels:
            if job_id in self.phases and self.phases[job_id].ended:
                continue
            record = reader.get(job_id)
            self.records[job_id] = record
            self.phases[job_id] = reader.phase(record, line)


def follow(
    reader: JobReader,
    labels: dict[str, str],
    *,
    live: bool = True,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Followed:
    """Read the jobs every POLL_SECONDS until each has ended (or `timeout` seconds passed)."""
    followed = Followed(labels)
    deadline = time.monotonic() + timeout if timeout else None
    view = Live(jobs_table(followed.rows()), console=err, auto_refresh=False) if live else None
    with view or contextlib.nullcontext():
        while True:
            followed.refresh(reader)
            if view is not None:
                view.update(jobs_table(followed.rows()), refresh=True)
            if followed.ended or (deadline is not None and time.monotonic() > deadline):
                break
            sleep(POLL_SECONDS)
    if view is not None and not err.is_terminal:
        err.line()  # the final table ends without a newline when it is not redrawn in place
    return followed
