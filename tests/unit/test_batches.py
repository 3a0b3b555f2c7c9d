"""Batches (dropcut.services.batches on moto): who joins which batch, endings counted once, the
summary and its one event when the last job of a closed batch ends, the reconciler's safety net."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from dropcut.aws.batch_store import BatchStore, Joined
from dropcut.aws.job_events import BATCH_COMPLETED, JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.model.batches import (
    BATCH_SIZE_METADATA,
    BATCH_TAG_METADATA,
    BatchState,
    BatchTag,
    batch_folder,
    new_batch_id,
)
from dropcut.model.jobs import JobRecord, JobStatus, job_id_for
from dropcut.model.layout import ROOT_FOLDER, BucketLayout
from dropcut.model.phases import JobPhase
from dropcut.services.batches import RECOUNT_AFTER_SECONDS, Batches
from tests.unit.test_job_events import FakeEventBridge

QUIET = 600.0
T0 = 1_800_000_000.0


@pytest.fixture
def world(batches_table, jobs_table, media_bucket, settings):
    """(batches, the job store, the Batch Completed events sent, the ending-counting publisher)."""
    sent = FakeEventBridge()
    batches = Batches(
        store=BatchStore(batches_table),
        jobs=JobStore(jobs_table),
        s3=media_bucket,
        layout=settings.layout,
        events=JobEvents(sent, "stack"),
        quiet_seconds=QUIET,
    )
    endings = JobEvents(None, "stack", on_ending=batches.job_ended)
    return batches, JobStore(jobs_table), sent, endings


def _job(batches: Batches, store: JobStore, key: str, now: float, **metadata: str) -> JobRecord:
    """A job for `key` that joined its batch at `now` (as Submit makes it)."""
    job_id = job_id_for("media", key, "v1")
    record = JobRecord(
        job_id=job_id,
        status=JobStatus.RUNNING,
        bucket="media",
        key=key,
        version="v1",
        batch_id=batches.join(job_id, key, metadata, now),
        created_at=now,
    )
    store.create(record)
    return record


def _end(endings: JobEvents, record: JobRecord, kind: JobEventType, **fields: object) -> None:
    endings.publish(kind, record.model_copy(update=fields))


def _completed(sent: FakeEventBridge) -> list[dict[str, object]]:
    return [json.loads(e["Detail"]) for e in sent.entries if e["DetailType"] == BATCH_COMPLETED]


def test_a_folders_uploads_form_one_batch_until_the_folder_is_quiet(world):
    batches, store, _, _ = world
    first = _job(batches, store, "inbox/news/a.mp4", T0)
    second = _job(batches, store, "inbox/news/b.mp4", T0 + QUIET - 1)
    other = _job(batches, store, "inbox/sport/a.mp4", T0 + 1)
    # Quiet window counted from the last upload: a third 599 s after the second still joins.
    third = _job(batches, store, "inbox/news/c.mp4", T0 + 2 * QUIET - 2)
    later = _job(batches, store, "inbox/news/d.mp4", T0 + 3 * QUIET)
    assert first.batch_id == second.batch_id == third.batch_id
    assert len({first.batch_id, other.batch_id, later.batch_id}) == 3
    header = batches.store.get(str(first.batch_id))
    assert header is not None
    assert (header.folder, header.jobs, header.expected) == ("news", 3, None)


def test_a_tag_joins_its_batch_in_its_folder_only_and_a_bad_tag_is_ignored(world):
    batches, store, _, _ = world
    tag = new_batch_id(T0)
    tagged = {BATCH_TAG_METADATA: tag, BATCH_SIZE_METADATA: "2"}
    a = _job(batches, store, "inbox/team/a.mp4", T0, **tagged)
    # The same tag on an upload to another folder does not reach into this folder's batch.
    elsewhere = _job(batches, store, "inbox/other/x.mp4", T0, **tagged)
    bad = _job(batches, store, "inbox/team/b.mp4", T0, **{BATCH_TAG_METADATA: "b-../../x"})
    assert a.batch_id == tag
    assert elsewhere.batch_id not in (None, tag)
    assert bad.batch_id not in (None, tag)
    header = batches.store.get(tag)
    assert header is not None
    assert (header.jobs, header.expected, header.origin.value) == (1, 2, "tagged")


@pytest.mark.parametrize(
    ("metadata", "valid"),
    [
        ({BATCH_TAG_METADATA: "b-20260101T000000-abcdef", BATCH_SIZE_METADATA: "3"}, True),
        ({BATCH_TAG_METADATA: "b-20260101T000000-abcdef", BATCH_SIZE_METADATA: "0"}, False),
        ({BATCH_TAG_METADATA: "b-20260101T000000-abcdef", BATCH_SIZE_METADATA: "-1"}, False),
        ({BATCH_TAG_METADATA: "b-20260101T000000-abcdef", BATCH_SIZE_METADATA: "9" * 12}, False),
        ({BATCH_TAG_METADATA: "b-20260101T000000-ABCDEF", BATCH_SIZE_METADATA: "3"}, False),
        ({BATCH_TAG_METADATA: "anything", BATCH_SIZE_METADATA: "3"}, False),
        ({BATCH_SIZE_METADATA: "3"}, False),
    ],
)
def test_only_a_well_formed_tag_is_trusted(metadata, valid):
    assert (BatchTag.of(metadata) is not None) is valid


def test_the_batch_folder_is_where_the_video_was_dropped():
    layout = BucketLayout("media")
    assert batch_folder(layout, "inbox/news/day1/a.mp4") == "news/day1"
    assert batch_folder(layout, "inbox/a.mp4") == ROOT_FOLDER


def test_a_repeated_join_and_a_repeated_ending_count_once(world):
    batches, store, _, endings = world
    record = _job(batches, store, "inbox/team/a.mp4", T0)
    batch_id = str(record.batch_id)
    assert batches.store.join(batch_id, record.job_id, record.key, T0) is Joined.ALREADY
    for _ in range(3):
        _end(endings, record, JobEventType.SUCCEEDED, credits=2.5)
    header = batches.store.get(batch_id)
    assert header is not None
    assert (header.jobs, header.ended, header.succeeded, header.credits_spent) == (1, 1, 1, 2.5)


def test_the_last_ending_of_a_full_tagged_batch_writes_one_summary_and_one_event(world, settings):
    batches, store, sent, endings = world
    tag = new_batch_id(T0)
    tagged = {BATCH_TAG_METADATA: tag, BATCH_SIZE_METADATA: "3"}
    names = ["a.mp4", "<b>&.mp4", "c.mp4"]
    jobs = [
        _job(batches, store, f"inbox/team/{name}", T0 + i, **tagged) for i, name in enumerate(names)
    ]
    _end(
        endings, jobs[0], JobEventType.SUCCEEDED, output_key="outbox/team/a.edited.mp4", credits=4.0
    )
    _end(endings, jobs[1], JobEventType.FAILED, error_report_key="errors/team/<b>&.mp4.error.json")
    assert _completed(sent) == []  # one job still running
    _end(endings, jobs[2], JobEventType.CANCELLED)
    _end(endings, jobs[2], JobEventType.CANCELLED)  # a repeated ending changes nothing
    [event] = _completed(sent)
    assert (event["batch_id"], event["jobs"], event["succeeded"]) == (tag, 3, 1)
    assert (event["failed"], event["cancelled"], event["credits_spent"]) == (1, 1, 4.0)
    assert event["summary_key"] == f"outbox/team/_batches/{tag}.json"
    s3 = batches.s3
    summary = json.loads(s3.get_object(Bucket="media", Key=event["summary_key"])["Body"].read())
    assert [row["key"] for row in summary["jobs"]] == [j.key for j in jobs]
    assert [row["phase"] for row in summary["jobs"]] == ["done", "failed", "cancelled"]
    assert summary["batch"]["state"] == BatchState.COMPLETED.value
    page = s3.get_object(Bucket="media", Key=str(event["page_key"]))
    assert page["ContentType"].startswith("text/html")
    html = page["Body"].read().decode()
    links = _links(html)
    # Relative to the page: the output beside it, the report under errors/.
    assert "../a.edited.mp4" in links
    assert "../../../errors/team/%3Cb%3E%26.mp4.error.json" in links
    assert "<b>&.mp4" not in html and "&lt;b&gt;&amp;.mp4" in html  # keys are escaped
    assert "<script" not in html
    header = batches.store.get(tag)
    assert header is not None and header.state is BatchState.COMPLETED


def test_a_big_batch_is_summarized_by_the_sweep_not_by_its_last_jobs_step(world, monkeypatch):
    import dropcut.services.batches as module

    monkeypatch.setattr(module, "INLINE_SUMMARY_MAX_JOBS", 2)
    batches, store, sent, endings = world
    tagged = {BATCH_TAG_METADATA: new_batch_id(T0), BATCH_SIZE_METADATA: "3"}
    jobs = [_job(batches, store, f"inbox/team/{n}.mp4", T0 + n, **tagged) for n in range(3)]
    for record in jobs:
        _end(endings, record, JobEventType.SUCCEEDED)
    assert _completed(sent) == [], "the last ending's step leaves it to the reconciler"
    assert batches.sweep(T0 + 10) == [jobs[0].batch_id]
    [event] = _completed(sent)
    assert event["jobs"] == event["succeeded"] == 3


def test_a_folder_batch_that_ended_before_its_quiet_window_is_completed_by_the_sweep(world):
    batches, store, sent, endings = world
    record = _job(batches, store, "inbox/team/a.mp4", T0)
    _end(endings, record, JobEventType.SUCCEEDED)
    # Ended at once, but the folder is not quiet yet: another upload may join.
    assert _completed(sent) == []
    assert batches.sweep(T0 + QUIET / 2) == []
    assert batches.sweep(T0 + QUIET) == [record.batch_id]
    assert batches.sweep(T0 + QUIET + 1) == []  # completed once
    assert len(_completed(sent)) == 1


def test_an_ending_that_was_not_counted_is_recounted_from_the_job_record(world):
    batches, store, sent, _ = world
    record = _job(batches, store, "inbox/team/a.mp4", T0)
    # The job ended, but its step died before the count (no ending hook ran).
    store.update(record.job_id, {"status": JobStatus.FAILED.value, "phase": JobPhase.FAILED.value})
    assert batches.sweep(T0 + QUIET) == []  # not stuck long enough to recount
    completed = batches.sweep(T0 + RECOUNT_AFTER_SECONDS)
    assert completed == [record.batch_id]
    [event] = _completed(sent)
    assert (event["failed"], event["jobs"]) == (1, 1)


def test_a_job_that_joins_while_the_summary_is_claimed_goes_to_a_new_batch(world):
    batches, store, _, _ = world
    record = _job(batches, store, "inbox/team/a.mp4", T0)
    header = batches.store.get(str(record.batch_id))
    assert header is not None
    assert batches.store.claim_summary(header, T0, T0 - 1) is False  # not ready: nothing ended
    batches.store.count_ending(
        str(record.batch_id),
        _ending(record.job_id),
    )
    ready = batches.store.get(str(record.batch_id))
    assert ready is not None and batches.store.claim_summary(ready, T0, T0 - 1)
    late = _job(batches, store, "inbox/team/b.mp4", T0 + 1)
    assert late.batch_id not in (None, record.batch_id)


def _ending(job_id: str):
    from dropcut.model.batches import MemberEnding

    return MemberEnding(job_id=job_id, phase=JobPhase.DONE, ended_at=T0)


def _links(html: str) -> list[str]:
    found: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(value or "" for name, value in attrs if name in ("href", "src"))

    Links().feed(html)
    return found


def test_submit_puts_a_tagged_upload_in_its_batch_and_its_refusal_completes_it(
    world, submit_deps_of, settings
):
    from dropcut.steps.submit import Outcome, submit_object

    batches, store, sent, _ = world
    deps = submit_deps_of(
        batches=batches, events=JobEvents(sent, "stack", on_ending=batches.job_ended)
    )
    tag = new_batch_id(T0)
    key = "inbox/team/not-a-video.mp4"
    put = deps.s3.put_object(
        Bucket=settings.bucket,
        Key=key,
        Body=b"this is not a video " * 2000,
        Metadata={BATCH_TAG_METADATA: tag, BATCH_SIZE_METADATA: "1", "prompt": "sepia"},
    )
    result = submit_object(deps, settings.bucket, key, put["VersionId"])
    assert result.outcome is Outcome.REFUSED
    record = store.require(str(result.job_id))
    assert record.batch_id == tag
    [event] = _completed(sent)
    assert (event["batch_id"], event["jobs"], event["failed"]) == (tag, 1, 1)
    summary = deps.s3.get_object(Bucket=settings.bucket, Key=str(event["summary_key"]))
    [row] = json.loads(summary["Body"].read())["jobs"]
    assert (row["key"], row["phase"], row["reason"]) == (key, "failed", "input_invalid")
    assert row["report_key"] == record.error_report_key
