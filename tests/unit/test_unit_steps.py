"""Prepare, Stitch, RecordFailure and CheckStatus on a job's units (the job itself, or the parts
of a split job), with media processing replaced by a recorder that writes plain files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.errors import ExecutionEnded, JobNotReady, TaskFailed, TaskRetried
from dropcut.model.budget import DailyBudget
from dropcut.model.follow import PollPlan, TaskProgress
from dropcut.model.jobs import JobStatus, job_of
from dropcut.model.media_tools import PreparedPart, StitchedVideo
from dropcut.model.plan import PartPlan, Plan, PlanKind, TargetVideo
from dropcut.providers import ProviderTask, TaskState
from dropcut.steps.acquire_slot import job_estimate
from dropcut.steps.check_status import CheckStatusDeps, check_status
from dropcut.steps.prepare import PrepareDeps, prepare
from dropcut.steps.record_failure import RecordFailureDeps, record_failure
from dropcut.steps.stitch import StitchDeps, sheet_times, stitch


class RecordingMedia:
    """MediaTools that writes each output as a small text file naming what went into it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def prepare(self, source: Path, plan: Plan, out_dir: Path, *, keep_audio: bool):
        out_dir.mkdir(parents=True, exist_ok=True)
        made = []
        for part in plan.parts:
            path = out_dir / f"part-{part.index}.mp4"
            path.write_text(f"{source.read_text()}[{part.start_seconds}:{part.end_seconds}]")
            made.append(
                PreparedPart(
                    part.index, path, part.start_seconds, part.end_seconds - part.start_seconds
                )
            )
        self.calls.append(("prepare", len(made)))
        return made

    def stitch(
        self,
        parts: Sequence[Path],
        output: Path,
        *,
        trim_to_seconds: float | None,
        audio_source: Path | None,
    ) -> StitchedVideo:
        output.write_text("+".join(p.read_text() for p in parts))
        self.calls.append(("stitch", (len(parts), trim_to_seconds, audio_source is not None)))
        return StitchedVideo(duration_seconds=31.0, remuxed=True, audio="original")

    def contact_sheet(self, before: Path, after: Path, png_out: Path, *, times) -> None:
        png_out.write_bytes(b"\x89PNG")
        self.calls.append(("sheet", list(times)))

    def check_decodes(self, video: Path) -> None:
        """An edited "video" whose text starts with "noise" does not decode."""
        from dropcut.errors import MediaUnreadable

        if video.read_text().startswith("noise"):
            raise MediaUnreadable(f"{video.name}: its picture does not decode")


def _plan(kind: PlanKind, spans: list[tuple[float, float]], duration: float) -> Plan:
    return Plan(
        kind=kind,
        reasons=[],
        duration_seconds=duration,
        parts=[
            PartPlan(index=i, start_seconds=a, end_seconds=b, billed_seconds=b - a)
            for i, (a, b) in enumerate(spans)
        ],
        target=None
        if kind is PlanKind.AS_IS
        else TargetVideo(width=1280, height=720, fps_num=24, fps_den=1, max_bitrate=8_000_000),
        pad_to_seconds=3.0 if kind is PlanKind.PAD else None,
        billed_seconds=duration,
        credits=None,
        billing="",
        problems=[],
    )


SPLIT = _plan(PlanKind.SPLIT, [(0, 7.75), (7.75, 15.5), (15.5, 23.25), (23.25, 31.0)], 31.0)
AS_IS = _plan(PlanKind.AS_IS, [(0, 5.0)], 5.0)


@pytest.fixture
def job(uploaded_job):
    """`job(plan, **fields)`: a job of inbox/a.mp4 (uploaded) with that plan recorded."""

    def make(plan: Plan, **fields):
        return uploaded_job(
            plan=plan.model_dump(mode="json"),
            media={"duration_seconds": plan.duration_seconds},
            execution_name="exec",
            **fields,
        )

    return make


def _prepare_deps(store, s3, settings, media, tmp_path) -> PrepareDeps:
    return PrepareDeps(s3=s3, store=store, layout=settings.layout, media=media, work_dir=tmp_path)


def test_an_as_is_job_is_its_own_one_unit_and_nothing_is_written(
    job, media_bucket, settings, tmp_path
):
    store, job_id = job(AS_IS)
    media = RecordingMedia()
    result = prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id)
    assert result.part_ids == [job_id]
    assert media.calls == []
    assert media_bucket.list_objects_v2(Bucket="media", Prefix="work/")["KeyCount"] == 0


def test_a_split_job_gets_one_part_record_per_part_with_its_own_video(
    job, media_bucket, settings, tmp_path
):
    store, job_id = job(SPLIT)
    media = RecordingMedia()
    deps = _prepare_deps(store, media_bucket, settings, media, tmp_path)
    units = prepare(deps, job_id).part_ids
    assert units == [f"{job_id}-p{i:02d}" for i in range(4)]
    assert [job_of(unit) for unit in units] == [job_id] * 4
    for index, unit in enumerate(units):
        part = store.require(unit)
        assert (part.part_of, part.part_index, part.status) == (job_id, index, JobStatus.RECEIVED)
        assert part.execution_name == "exec"
        body = media_bucket.get_object(
            Bucket="media", Key=part.source_key, VersionId=part.source_version
        )["Body"].read()
        start, end = SPLIT.parts[index].start_seconds, SPLIT.parts[index].end_seconds
        assert body == f"input[{start}:{end}]".encode()
    # A retry of the step (Lambda retried after a lost answer) makes nothing twice.
    assert prepare(deps, job_id).part_ids == units
    assert media.calls == [("prepare", 4)]


def _edited(store, s3, settings, unit: str, job_id: str, body: bytes) -> None:
    key = settings.layout.edited_key(job_id, unit)
    s3.put_object(Bucket="media", Key=key, Body=body)
    store.update(unit, {"edited_key": key, "credits": 2.0})


def _stitch_deps(store, s3, settings, media, tmp_path) -> StitchDeps:
    return StitchDeps(
        s3=s3,
        store=store,
        layout=settings.layout,
        media=media,
        work_dir=tmp_path,
        events=NO_JOB_EVENTS,
    )


def test_stitch_copies_a_single_edit_and_draws_its_picture(job, media_bucket, settings, tmp_path):
    store, job_id = job(AS_IS, units=None)
    store.update(job_id, {"part_ids": [job_id]})
    _edited(store, media_bucket, settings, job_id, job_id, b"edited")
    media = RecordingMedia()
    result = stitch(_stitch_deps(store, media_bucket, settings, media, tmp_path), job_id)
    assert result.output_key == "outbox/a.edited.mp4"
    output = media_bucket.get_object(Bucket="media", Key=result.output_key)["Body"].read()
    assert output == b"edited"  # the edit itself: no re-encode
    assert [name for name, _ in media.calls] == ["sheet"]
    assert result.contact_sheet_key == "outbox/a.edited.sheet.png"
    manifest = json.loads(
        media_bucket.get_object(Bucket="media", Key=result.result_manifest_key)["Body"].read()
    )
    assert manifest["plan"]["kind"] == "as_is"
    assert manifest["credits"] == 2.0
    assert manifest["contact_sheet"]["key"] == "outbox/a.edited.sheet.png"
    assert store.require(job_id).status is JobStatus.SUCCEEDED


def test_stitch_joins_the_parts_in_order_with_the_original_audio(
    job, media_bucket, settings, tmp_path
):
    from dropcut.model.jobs import JobSpec

    store, job_id = job(SPLIT, spec=JobSpec(prompt="sepia", keep_audio=True))
    media = RecordingMedia()
    units = prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id).part_ids
    for index, unit in enumerate(units):
        _edited(store, media_bucket, settings, unit, job_id, f"e{index}".encode())
    result = stitch(_stitch_deps(store, media_bucket, settings, media, tmp_path), job_id)
    output = media_bucket.get_object(Bucket="media", Key=result.output_key)["Body"].read()
    assert output == b"e0+e1+e2+e3"
    assert ("stitch", (4, None, True)) in media.calls
    sheet_at = next(times for name, times in media.calls if name == "sheet")
    for seam in (7.75, 15.5, 23.25):  # a frame either side of every seam
        assert any(seam - 0.05 < t < seam for t in sheet_at)
        assert any(seam < t < seam + 0.05 for t in sheet_at)
    manifest = json.loads(
        media_bucket.get_object(Bucket="media", Key=result.result_manifest_key)["Body"].read()
    )
    assert [p["state"] for p in manifest["parts"]] == ["edited"] * 4
    assert manifest["credits"] == 8.0


def test_prepare_stops_before_paying_for_an_input_deleted_while_it_waited(
    job, media_bucket, settings, tmp_path
):
    from dropcut.errors import InputGone

    store, job_id = job(SPLIT)
    media_bucket.delete_object(Bucket="media", Key="inbox/a.mp4")  # a delete marker
    media = RecordingMedia()
    with pytest.raises(InputGone, match="it was deleted before it was prepared"):
        prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id)
    assert media.calls == []
    assert media_bucket.list_objects_v2(Bucket="media", Prefix="work/")["KeyCount"] == 0


def test_a_job_cancelled_while_it_is_prepared_gets_no_parts(job, media_bucket, settings, tmp_path):
    store, job_id = job(SPLIT)

    class CancelledMeanwhile(RecordingMedia):
        def prepare(self, source, plan, out_dir, *, keep_audio):
            store.update(job_id, {"status": JobStatus.FAILED.value, "error_reason": "cancelled"})
            return super().prepare(source, plan, out_dir, keep_audio=keep_audio)

    deps = _prepare_deps(store, media_bucket, settings, CancelledMeanwhile(), tmp_path)
    with pytest.raises(ExecutionEnded, match="ended while its input was prepared"):
        prepare(deps, job_id)
    assert not store.require(job_id).part_ids
    assert store.get(f"{job_id}-p00") is None


def test_stitch_keeps_paid_parts_whose_input_was_deleted(job, media_bucket, settings, tmp_path):
    from dropcut.model.jobs import JobSpec

    store, job_id = job(SPLIT, spec=JobSpec(prompt="sepia", keep_audio=True))
    media = RecordingMedia()
    units = prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id).part_ids
    for index, unit in enumerate(units):
        _edited(store, media_bucket, settings, unit, job_id, f"e{index}".encode())
    version = store.require(job_id).version
    media_bucket.delete_object(Bucket="media", Key="inbox/a.mp4", VersionId=version)
    result = stitch(_stitch_deps(store, media_bucket, settings, media, tmp_path), job_id)
    output = media_bucket.get_object(Bucket="media", Key=result.output_key)["Body"].read()
    assert output == b"e0+e1+e2+e3"  # every paid part, joined without the input's sound track
    assert ("stitch", (4, None, False)) in media.calls
    assert not any(name == "sheet" for name, _ in media.calls) and result.contact_sheet_key is None
    manifest = json.loads(
        media_bucket.get_object(Bucket="media", Key=result.result_manifest_key)["Body"].read()
    )
    [notice] = manifest["notices"]
    assert "the input was deleted" in notice and "sound track" in notice
    assert store.require(job_id).notices == [notice]


def test_a_part_whose_edit_does_not_decode_fails_the_job_and_is_not_reused(
    job, media_bucket, settings, tmp_path
):
    from dropcut.errors import ResultUndecodable
    from dropcut.services.parts import reusable_result

    store, job_id = job(SPLIT)
    media = RecordingMedia()
    units = prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id).part_ids
    for index, unit in enumerate(units):
        _edited(store, media_bucket, settings, unit, job_id, b"noise" if index == 2 else b"e")
    with pytest.raises(ResultUndecodable, match=f"{units[2]} .* does not decode"):
        stitch(_stitch_deps(store, media_bucket, settings, media, tmp_path), job_id)
    assert media_bucket.list_objects_v2(Bucket="media", Prefix="outbox/")["KeyCount"] == 0
    broken = store.require(units[2])
    assert broken.edited_key is None and reusable_result(broken) is None  # a retry pays anew
    assert store.require(units[0]).edited_key is not None  # the others stay for a retry


def test_stitch_refuses_while_a_part_has_no_edited_video(job, media_bucket, settings, tmp_path):
    store, job_id = job(SPLIT)
    media = RecordingMedia()
    units = prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id).part_ids
    for unit in units[:-1]:
        _edited(store, media_bucket, settings, unit, job_id, b"e")
    with pytest.raises(JobNotReady):
        stitch(_stitch_deps(store, media_bucket, settings, media, tmp_path), job_id)
    assert media_bucket.list_objects_v2(Bucket="media", Prefix="outbox/")["KeyCount"] == 0


def test_a_failed_split_job_reports_every_part(job, media_bucket, settings, tmp_path, pool):
    store, job_id = job(SPLIT)
    media = RecordingMedia()
    units = prepare(_prepare_deps(store, media_bucket, settings, media, tmp_path), job_id).part_ids
    _edited(store, media_bucket, settings, units[0], job_id, b"e")
    store.update(units[0], {"status": JobStatus.SUCCEEDED.value})
    store.update(units[1], {"task_id": "t-1", "task_state": "failed", "credits": 1.0})
    deps = RecordFailureDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        slots=pool,
        lost_task_hold_seconds=60,
        events=NO_JOB_EVENTS,
    )
    key = record_failure(deps, job_id, {"Error": "TaskFailed", "Cause": "the part failed"})
    report = json.loads(media_bucket.get_object(Bucket="media", Key=key)["Body"].read())
    assert [(p["index"], p["state"]) for p in report["parts"]] == [
        (0, "edited"),
        (1, "failed"),
        (2, "waiting"),
        (3, "waiting"),
    ]
    assert report["parts"][0]["edited_key"]  # kept for the user
    assert report["parts"][1]["provider_task_id"] == "t-1"
    assert [store.require(u).status for u in units] == [
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.FAILED,
        JobStatus.FAILED,
    ]


class FailedTasks:
    def get_task(self, task_id: str) -> ProviderTask:
        return ProviderTask(
            task_id=task_id, state=TaskState.FAILED, provider_status="failed", credits=1.5
        )


def _progress(task_id: str) -> TaskProgress:
    return TaskProgress(
        task_id=task_id,
        provider="evolink",
        state=TaskState.RUNNING,
        wait_seconds=1,
        interval_seconds=1,
        deadline=10**10,
    )


def test_a_part_whose_task_failed_gets_one_new_task_then_fails(
    job, media_bucket, settings, tmp_path, pool
):
    store, job_id = job(SPLIT)
    units = prepare(
        _prepare_deps(store, media_bucket, settings, RecordingMedia(), tmp_path), job_id
    ).part_ids
    deps = CheckStatusDeps(
        store=store,
        provider_for=lambda _: FailedTasks(),
        plan=PollPlan(initial_seconds=1, max_seconds=60, growth_percent=50),
        ledger=pool.ledger,
        task_retries=1,
        pace=None,
        breaker=None,
    )
    part = units[2]
    store.update(part, {"task_id": "t-1", "status": JobStatus.RUNNING.value})
    with pytest.raises(TaskRetried):
        check_status(deps, part, _progress("t-1"))
    reset = store.require(part)
    assert reset.task_id is None and reset.status is JobStatus.RECEIVED
    assert reset.failed_tasks == [{"task_id": "t-1", "credits": 1.5}]
    store.update(part, {"task_id": "t-2", "status": JobStatus.RUNNING.value})
    with pytest.raises(TaskFailed):
        check_status(deps, part, _progress("t-2"))


class FailedTasksBilled:
    """Every task failed, billed `credits` (None: the provider says nothing)."""

    def __init__(self, credits: float | None) -> None:
        self.credits = credits

    def get_task(self, task_id: str) -> ProviderTask:
        return ProviderTask(
            task_id=task_id, state=TaskState.FAILED, provider_status="failed", credits=self.credits
        )


def _budget_pool(slots_table, tokens, limit: float) -> SlotPool:
    return SlotPool(
        slots_table, tokens, "evolink", limit=4, budget=DailyBudget(limit, credits_per_second=1.0)
    )


def _granted_part(job, media_bucket, settings, tmp_path, pool: SlotPool, index: int = 2):
    """A split job prepared; its part `index` holds a slot and its first task's reservation
    (7.75 s at 1 credit a second) and runs task t-1. Returns (store, part id)."""
    store, job_id = job(SPLIT)
    units = prepare(
        _prepare_deps(store, media_bucket, settings, RecordingMedia(), tmp_path), job_id
    ).part_ids
    part = units[index]
    record = store.require(part)
    assert pool.acquire(part, record.created_at, "tok", 3600, job_estimate(pool, record))
    store.update(part, {"task_id": "t-1", "status": JobStatus.RUNNING.value})
    return store, part


def _checks(store, pool: SlotPool, credits: float | None, retries: int = 1) -> CheckStatusDeps:
    return CheckStatusDeps(
        store=store,
        provider_for=lambda _: FailedTasksBilled(credits),
        plan=PollPlan(initial_seconds=1, max_seconds=60, growth_percent=50),
        ledger=pool.ledger,
        task_retries=retries,
        pace=None,
        breaker=None,
    )


def test_a_retried_part_is_charged_for_its_failed_task_and_reserves_its_new_one(
    job, media_bucket, settings, tmp_path, slots_table, tokens
):
    pool = _budget_pool(slots_table, tokens, limit=100)
    store, part = _granted_part(job, media_bucket, settings, tmp_path, pool)
    assert pool.spent() == 7.75
    deps = _checks(store, pool, credits=1.5)
    with pytest.raises(TaskRetried):
        check_status(deps, part, _progress("t-1"))
    first, second = pool.reservation(part, 0), pool.reservation(part, 1)
    assert first is not None and float(first["charged"]) == 1.5  # the failed task is paid for
    assert second is not None and float(second["reserved"]) == 7.75  # before its task exists
    assert "charged" not in second
    assert pool.spent() == 1.5 + 7.75
    # The new task fails too (no retries left); the part's ending charges the new task, not the
    # first task's reservation again.
    store.update(part, {"task_id": "t-2", "status": JobStatus.RUNNING.value})
    with pytest.raises(TaskFailed):
        check_status(deps, part, _progress("t-2"))
    settle_slot(pool, store.require(part), hold_seconds=60)
    second = pool.reservation(part, 1)
    assert second is not None and float(second["charged"]) == 1.5
    assert pool.spent() == 3.0  # both tasks, as the provider billed them


def test_a_failed_task_with_no_figure_keeps_its_estimate_and_the_new_task_adds_its_own(
    job, media_bucket, settings, tmp_path, slots_table, tokens
):
    pool = _budget_pool(slots_table, tokens, limit=100)
    store, part = _granted_part(job, media_bucket, settings, tmp_path, pool)
    with pytest.raises(TaskRetried):
        check_status(_checks(store, pool, credits=None), part, _progress("t-1"))
    assert pool.spent() == 2 * 7.75  # one estimate per task: the retry did not reuse the first


def test_a_part_the_budget_cannot_take_again_fails_with_its_failed_task_charged(
    job, media_bucket, settings, tmp_path, slots_table, tokens
):
    pool = _budget_pool(slots_table, tokens, limit=10)
    store, part = _granted_part(job, media_bucket, settings, tmp_path, pool)
    # 5 credits charged for the failed task, then 5 + 7.75 would pass the budget of 10.
    with pytest.raises(TaskFailed, match=r"no room for it \(DailyCreditBudget 10, 5 spent today\)"):
        check_status(_checks(store, pool, credits=5.0), part, _progress("t-1"))
    assert pool.reservation(part, 1) is None
    record = store.require(part)
    assert (record.task_id, record.failed_tasks) == ("t-1", [])  # not reset: no new task
    settle_slot(pool, record, hold_seconds=60)  # its ending charges nothing twice
    assert pool.spent() == 5.0


def test_a_check_status_repeated_after_the_reset_charges_and_reserves_nothing_again(
    job, media_bucket, settings, tmp_path, slots_table, tokens
):
    pool = _budget_pool(slots_table, tokens, limit=100)
    store, part = _granted_part(job, media_bucket, settings, tmp_path, pool)
    deps = _checks(store, pool, credits=1.5, retries=2)
    # A crash after the charge and the reservation, before the reset: the step runs again.
    pool.charge(part, 1.5, task=0)
    assert pool.reserve(part, 1, 7.75) is True
    with pytest.raises(TaskRetried):
        check_status(deps, part, _progress("t-1"))
    assert pool.spent() == 1.5 + 7.75
    # Its answer lost after the reset, the step runs once more for the task left behind.
    with pytest.raises(TaskFailed):
        check_status(deps, part, _progress("t-1"))
    assert pool.spent() == 1.5 + 7.75
    assert pool.reservation(part, 2) is None


def test_a_whole_jobs_failed_task_is_not_retried(job, media_bucket, settings, pool):
    store, job_id = job(AS_IS, task_id="t-1", status=JobStatus.RUNNING)
    deps = CheckStatusDeps(
        store=store,
        provider_for=lambda _: FailedTasks(),
        plan=PollPlan(initial_seconds=1, max_seconds=60, growth_percent=50),
        ledger=pool.ledger,
        task_retries=1,
        pace=None,
        breaker=None,
    )
    with pytest.raises(TaskFailed):
        check_status(deps, job_id, _progress("t-1"))


def test_the_picture_shows_even_times_and_both_sides_of_each_seam():
    times = sheet_times(31.0, [0.0, 7.75, 15.5, 23.25])
    assert times == sorted(times) and all(0 <= t < 31.0 for t in times)
    assert len(times) == 4 + 2 * 3
    assert sheet_times(5.0, []) == [0.625, 1.875, 3.125, 4.375]
