"""The `dropcut` command line without a stack: help, usage errors, and `estimate` on local files
(Submit's own checks; nothing is uploaded, so nothing needs the network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devstack.media import make_sample_video
from dropcut.model.plan import billed_seconds
from dropcut.providers import AimlapiProvider, EvolinkProvider
from dropcut_cli.app import app
from dropcut_cli.jobs import parse_since

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_sample_video(tmp_path_factory.mktemp("cli") / "clip.mp4", seconds=2.0))


@pytest.mark.parametrize("command", ["submit", "ls", "show", "fetch", "watch", "estimate"])
def test_every_command_has_help_with_examples(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.output and "dropcut " in result.output
    assert "--json" in result.output


def test_estimate_a_short_clip_with_evolink_billing(clip: Path) -> None:
    result = runner.invoke(
        app, ["estimate", str(clip), "--prompt", "sepia", "--provider", "evolink"]
    )
    assert result.exit_code == 0, result.output
    assert "would be accepted" in result.output
    assert "2.00 s" in result.output  # the media facts, read by the probe
    assert "bills it as 3 s" in result.output  # the notice check_video gives
    assert "billed   3 s" in result.output
    # Submit's plan: 2 s of 320x240 is padded to 3 s and scaled up to the model's 720 px
    assert "plan     pad (prepared as H.264 960x720, 24 fps, at most 20 Mb/s)" in result.output
    assert "reason   320x240 is under the model's 720 px minimum side" in result.output
    assert "part 1     0.00 -   2.00 s, padded to 3 s, billed 3 s" in result.output


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-long")
    return Path(make_sample_video(folder / "long.mp4", seconds=31.0, width=64, height=48))


def test_estimate_shows_each_part_of_a_long_clip(long_clip: Path) -> None:
    result = runner.invoke(app, ["estimate", str(long_clip), "--prompt", "sepia"])
    assert result.exit_code == 0, result.output
    assert "plan     split" in result.output
    for index, (start, end) in enumerate([(0, 7.75), (7.75, 15.5), (15.5, 23.25), (23.25, 31)]):
        assert f"part {index + 1}   {start:6.2f} - {end:6.2f} s, billed 7.75 s" in result.output
    assert "billed   31 s" in result.output


def test_estimate_refuses_a_plan_over_max_parts_with_its_estimate(long_clip: Path) -> None:
    result = runner.invoke(
        app, ["estimate", str(long_clip), "--prompt", "sepia", "--max-parts", "3", "--json"]
    )
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)["inputs"]
    assert item["accepted"] is False
    assert item["plan"]["kind"] == "refuse" and len(item["plan"]["parts"]) == 4
    assert item["plan"]["reasons"][0] == "the plan needs 4 parts; MaxPartsPerJob is 3"
    assert item["billed_seconds"] == 31.0
    assert [problem["field"] for problem in item["problems"]] == ["video"]


def test_estimate_with_normalize_inputs_off_refuses_what_needs_converting(clip: Path) -> None:
    result = runner.invoke(
        app, ["estimate", str(clip), "--prompt", "sepia", "--normalize-inputs", "off"]
    )
    assert result.exit_code == 1
    assert "NormalizeInputs is off; the video would have been padded" in result.output


def test_estimate_json_and_refusals(clip: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    manifest = tmp_path / "options.json"
    manifest.write_text(json.dumps({"prompt": "x" * 2600, "colour": "red"}))
    result = runner.invoke(
        app,
        [
            "estimate",
            str(clip),
            str(text),
            "--manifest",
            str(manifest),
            "--provider",
            "aimlapi",
            "--json",
        ],
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    by_name = {Path(item["path"]).name: item for item in document["inputs"]}
    fields = {p["field"] for p in by_name["notes.mp4"]["problems"]}
    assert fields == {"video", "colour"}
    # the manifest's unknown field is refused by parse_job_spec, before any provider limit
    assert by_name["clip.mp4"]["accepted"] is False
    assert by_name["clip.mp4"]["billed_seconds"] is None  # aimlapi documents no billing rule
    assert by_name["clip.mp4"]["plan"]["kind"] == "pad"
    assert by_name["notes.mp4"]["plan"] is None  # not a video: nothing to plan
    assert by_name["clip.mp4"]["media"]["container"] == "mp4"


def test_estimate_gives_submits_notice_for_keep_audio_of_a_silent_video(tmp_path: Path) -> None:
    silent = make_sample_video(tmp_path / "mute.mp4", seconds=4.0, audio=False)
    manifest = tmp_path / "options.json"
    manifest.write_text(json.dumps({"prompt": "sepia", "keep_audio": True}))
    result = runner.invoke(app, ["estimate", str(silent), "--manifest", str(manifest), "--json"])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)["inputs"]
    assert (
        "keep_audio was asked, but the video has no audio track: the edited video is silent"
        in item["notices"]
    )


def test_estimate_applies_the_provider_prompt_limit(clip: Path) -> None:
    result = runner.invoke(
        app, ["estimate", str(clip), "--prompt", "x" * 2600, "--provider", "aimlapi"]
    )
    assert result.exit_code == 1
    assert "at most 2500 characters for aimlapi" in result.output


def test_estimate_refuses_an_unreadable_manifest(clip: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "broken.json"
    manifest.write_text('{"prompt": ')
    result = runner.invoke(app, ["estimate", str(clip), "--manifest", str(manifest)])
    assert result.exit_code == 1
    assert "not valid JSON" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "missing.mp4"],
        ["estimate", "--provider", "nope", "x"],
        ["--local", "--endpoint-url", "http://127.0.0.1:1", "ls"],
        ["ls", "--since", "yesterday"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str], clip: Path) -> None:
    args = [str(clip) if a == "x" else a for a in args]
    assert runner.invoke(app, args).exit_code == 2


def test_billing_rule() -> None:
    assert billed_seconds(EvolinkProvider, 1.2)[0] == 3
    assert billed_seconds(EvolinkProvider, 12.5)[0] == 10
    assert billed_seconds(EvolinkProvider, 4.25)[0] == 4.25
    assert billed_seconds(AimlapiProvider, 4.0)[0] is None


def test_since() -> None:
    import time

    assert abs(parse_since("2h") - (time.time() - 7200)) < 5
    with pytest.raises(ValueError):
        parse_since("2 weeks")


def test_outside_text_is_printed_as_it_is_not_as_markup(clip: Path, tmp_path: Path) -> None:
    # Keys, prompts and provider messages often hold brackets ("[sim:fail]",
    # "[generation_failed]"); the console must not take them for styles and drop them.
    named = tmp_path / "take [draft].mp4"
    named.write_bytes(clip.read_bytes())
    manifest = tmp_path / "options.json"
    manifest.write_text(json.dumps({"prompt": "sepia", "[red]colour": 1}))
    result = runner.invoke(app, ["estimate", str(named), "--manifest", str(manifest)])
    assert result.exit_code == 1
    assert "take [draft].mp4" in result.output
    assert "[red]colour" in result.output


def test_plan_line_says_kind_parts_bill_and_reasons(long_clip: Path) -> None:
    from dropcut.formats.probe import probe_video
    from dropcut.model.plan import plan_video
    from dropcut_cli.display import plan_line
    from dropcut_cli.estimate import file_reader

    media = probe_video(file_reader(long_clip), long_clip.stat().st_size)
    plan = plan_video(media, EvolinkProvider, max_parts=12, normalize=True)
    assert plan_line(plan.model_dump(mode="json")) == (
        "split into 4 parts, billed 31 s: 31.0 s is over the model's 10 s: split into 4 parts "
        "of 7.75 s, each re-encoded; 64x48 is under the model's 720 px minimum side"
    )
    assert plan_line(None) == ""


def test_cancel_and_retry_requests_are_signed_by_the_caller_and_a_403_is_a_refusal(monkeypatch):
    # The jobs API learns the caller from the signature: the request carries nothing else.
    import boto3
    import httpx

    from devstack import iam_auth
    from dropcut_cli import cmd_control
    from dropcut_cli.connection import Stack

    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    stack = Stack("s", {"JobsApiUrl": "https://abc.example/"}, {}, session, None)
    job_id = "job-" + "a" * 40
    sent: list[httpx.Request] = []
    answers = iter(
        [
            httpx.Response(200, json={"job_id": job_id, "outcome": "cancelled"}),
            httpx.Response(403, json={"message": "arn:x may not cancel it"}),
            httpx.Response(500, json={"message": "Internal Server Error"}),
        ]
    )

    def post(url: str, headers: dict[str, str], content: bytes, timeout: float) -> httpx.Response:
        request = httpx.Request("POST", url, headers=headers, content=content)
        sent.append(request)
        response = next(answers)
        response.request = request
        return response

    monkeypatch.setattr(httpx, "post", post)
    assert cmd_control.request(stack, "cancel", job_id)["outcome"] == "cancelled"
    [request] = sent
    assert str(request.url) == f"https://abc.example/jobs/{job_id}/cancel"
    assert request.content == b""
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert "/us-east-1/execute-api/aws4_request" in headers["authorization"]
    # The local stack's verifier (API Gateway's stand-in) accepts it as the signer.
    identity = iam_auth.authenticate(
        "POST", request.url.path, "", headers, b"", region="us-east-1", account_id="123456789012"
    )
    assert identity.user_arn == "arn:aws:iam::123456789012:root"
    with pytest.raises(cmd_control.Refused, match="may not cancel"):
        cmd_control.request(stack, "cancel", job_id)
    with pytest.raises(cmd_control.RequestFailed, match="500"):
        cmd_control.request(stack, "retry", job_id)


def test_a_suggested_command_names_the_same_stack_again() -> None:
    from dropcut_cli.connection import Target

    assert Target(local=True).flags == "--local"
    assert Target(stack="prod", profile="ops").flags == "--stack prod --profile ops"
    assert Target().flags == ""
