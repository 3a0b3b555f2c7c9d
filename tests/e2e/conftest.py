"""One local app (simulator + local stack from template.yaml) for the whole e2e session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.local_app import LocalApp, local_app
from devstack.media import make_sample_video


# Module scope: moto state and MOTO_PORT are process-wide, so this stack must be gone before
# other test packages start their own.
@pytest.fixture(scope="module")
def app() -> Iterator[LocalApp]:
    # A short deadline so a task that never finishes ends the job within the test's time (and
    # long enough for the simulator's edits of in-spec clips on 2 busy cores).
    with local_app(
        "evolink",
        # Job endings mailed one by one (the job event tests read them from the email rule).
        {
            "JobDeadlineSeconds": "20",
            "ManifestWaitSeconds": "3",
            "ResultCopyWindowSeconds": "10",
            "NotificationEmailFor": "job",
        },
        code_root=code_root(),
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_simulator(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("own_app"):
        return  # the module runs its own stack (one stack per process at a time)
    app: LocalApp = request.getfixturevalue("app")
    app.simulator.reset(config=True)
    app.simulator.configure(task_seconds=1.5, queue_seconds=0.2)


def code_root() -> Path | None:
    """`make test` sets DROPCUT_CODE_ROOT=.aws-sam/build: the e2e suite then runs what `sam
    build` produced (the layer as it deploys), not the source tree."""
    root = os.environ.get("DROPCUT_CODE_ROOT")
    return Path(root) if root else None


@pytest.fixture(scope="module")
def build() -> Path:
    """The `sam build` output the e2e suite runs (`make test` sets DROPCUT_CODE_ROOT); tests that
    read the build itself are skipped without it."""
    root = code_root()
    if root is None:
        pytest.skip("needs the sam build output (make test sets DROPCUT_CODE_ROOT)")
    return root


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # Within every limit of the model (the local simulator is strict): sent as it is.
    path = make_sample_video(
        tmp_path_factory.mktemp("media") / "clip.mp4", seconds=4.0, width=720, height=720
    )
    return Path(path).read_bytes()


def assert_took_turns(jobs: dict[str, dict[str, Any]], small: list[str], big: list[str]) -> None:
    """Fair turns, measured from each clip's arrival in the backlog: a small folder's clip was
    passed by at most as many of the backfill's (`big`) as came before it in its own folder, and
    the one running (jobs: the job records by input key)."""
    for key in small:
        mine = jobs[key]
        folder = key.rsplit("/", 1)[0]
        before_it = sum(
            1
            for other in small
            if other.startswith(folder) and jobs[other]["created_at"] < mine["created_at"]
        )
        passed = sum(
            1
            for other in big
            if mine["created_at"] < jobs[other]["admitted_at"] < mine["admitted_at"]
        )
        assert passed <= before_it + 2, (key, passed)
