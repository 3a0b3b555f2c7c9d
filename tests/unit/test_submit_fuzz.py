"""Whatever a person uploads (manifests, folder presets, video headers, metadata), Submit ends
with a job or a report (or knowingly ignores it), never an exception: no user input may reach
the dead-letter queue, which is for infrastructure failures."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.media import make_sample_video
from dropcut.steps.submit import Outcome, SubmitDeps, submit_object

ENDINGS = {
    Outcome.STARTED,
    Outcome.REFUSED,
    Outcome.WAITING_FOR_MANIFEST,
    Outcome.NOT_A_JOB,
    Outcome.IGNORED,
}
_names = itertools.count()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_sample_video(
        tmp_path_factory.mktemp("fuzz") / "c.mp4", seconds=1.0, width=64, height=48
    )
    return Path(path).read_bytes()


@pytest.fixture
def deps(submit_deps_of) -> SubmitDeps:
    return submit_deps_of()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.text(max_size=60) | JSON_VALUES,
        "images": st.lists(
            st.sampled_from(["inbox/x.png", "https://127.1/a.png", "http://a/b", "s3://x"])
            | st.text(max_size=20),
            max_size=9,
        ),
        "keep_audio": JSON_VALUES,
        "aspect_ratio": st.sampled_from(["16:9", "4:3", 3]) | JSON_VALUES,
        "provider": st.sampled_from(["evolink", "aimlapi", "x"]),
        "output_name": st.text(max_size=40),
        "keep_sound": JSON_VALUES,
    },
)
DOCUMENTS = (
    FIELDS.map(lambda d: json.dumps(d).encode())
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
    | st.sampled_from([b"[" * 5000, b'{"prompt": ' + b"9" * 400 + b"}", b"", b"\xff\xfe{}"])
)


def _video(clip: bytes, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["clip", "cut", "mangled", "random", "empty"]))
    if kind == "clip":
        return clip
    if kind == "cut":
        return clip[: data.draw(st.integers(0, len(clip)))]
    if kind == "mangled":
        damaged = bytearray(clip)
        for _ in range(data.draw(st.integers(1, 6))):
            position = data.draw(st.integers(0, min(len(clip), 4096) - 1))
            damaged[position] = data.draw(st.integers(0, 255))
        return bytes(damaged)
    if kind == "random":
        return data.draw(st.binary(max_size=2000))
    return b""


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_upload_gets_a_job_or_a_report_never_an_exception(deps, clip, data):
    folder = f"inbox/f{next(_names)}/"
    name = data.draw(
        st.sampled_from(["clip.mp4", "clip.MOV", "clip.txt", "._clip.mp4", "c lip+é.mp4"])
    )
    key = folder + name
    s3 = deps.s3
    if data.draw(st.booleans()):
        s3.put_object(Bucket="media", Key=folder + "_preset.json", Body=data.draw(DOCUMENTS))
    if data.draw(st.booleans()):
        s3.put_object(Bucket="media", Key=key + ".json", Body=data.draw(DOCUMENTS))
    metadata = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "prompt": st.sampled_from(
                    ["sepia", "=?UTF-8?B?bm9pcg==?=", "=?bogus?Q?x?=", "=?UTF-8?B?@@?=", " "]
                )
            },
        )
    )
    put = s3.put_object(Bucket="media", Key=key, Body=_video(clip, data), Metadata=metadata)

    result = submit_object(deps, "media", key, put["VersionId"])

    assert result.outcome in ENDINGS, result
    if result.outcome is Outcome.REFUSED:
        record = deps.store.require(result.job_id or "")
        assert record.error_report_key and record.problems
