"""Local simulator of the two Kling O1 video-edit provider APIs dropcut talks to.

One ``ThreadingHTTPServer`` on 127.0.0.1 speaks both APIs as documented in
``providers/README.md`` and the providers' pages, and really edits the video (PyAV):

aimlapi (poll only)
    ``POST /v2/video/generations`` -> ``{"id": "<uuid4>:klingai/video-o1-video-to-video-edit",
    "status": "queued"}``; ``GET /v2/video/generations?generation_id=ID`` (ID URL-encoded).
    Statuses ``queued -> generating -> completed | error``; completed has ``video.url`` and
    ``meta.usage.credits_used``; error has ``error.{name, message}``. Error answers (400, 401,
    402, 404, 429, 5xx) use the NestJS-style body ``{"statusCode", "message", "error"}``.
evolink (poll or callback)
    ``POST /v1/videos/generations``; ``GET /v1/tasks/{task_id}``. Statuses
    ``pending -> processing -> completed | failed``, ``progress`` 0..100, ``results`` / ``error``
    (``{code: <string business code>, message}``). Errors ``{"error": {code, message, type,
    param?, fallback_suggestion?}}`` with the documented status codes and types. A non
    ``task-unified-`` id gets 400 with ``error.code = "invalid_task_id"``. When a task ends, the
    query body is POSTed to ``callback_url`` (timeout ``callback_timeout_seconds``, retries after
    ``callback_retry_delays`` on non-2xx / errors), from background threads.

Simulator allowances (differences from the real APIs, on purpose):
    * input video URLs may be ``http://`` on a loopback host (127.0.0.1, ::1, localhost,
      ``*.localhost``), because local S3 presigned URLs are http; otherwise https only (aimlapi
      also takes ``data:`` URIs);
    * ``callback_url`` must be https and not a private/loopback/link-local/reserved IP literal or
      ``localhost`` (host names are not resolved) unless ``allow_insecure_callbacks`` is true;
    * the input is fetched once at create (to report ``video_duration`` and bill: < 3 s is billed
      as 3 s, > 10 s as 10 s, ``credits_per_second`` credits per billed second; credits are not
      refunded) and again when the task starts (the edit). A fetch/format/size problem is not an
      HTTP error: the task ends ``failed``/``error`` with code ``video_download_failed``,
      ``unsupported_video_format``, ``video_too_large``, ``image_download_failed``,
      ``unsupported_image_format`` or ``image_too_large`` (aimlapi ``error.name`` is the CamelCase
      form, e.g. ``VideoDownloadFailed``).
    * evolink image URLs with an extension other than .jpg/.jpeg/.png/.webp are refused with 400;
      URLs without an extension are checked by content when fetched.

Timing: a task stays queued/pending ``queue_seconds``, then runs; it completes once its output
file exists AND ``task_seconds`` have elapsed since it started. Results are served (no auth, like
a CDN link) at ``GET /_sim/results/<token>/output.mp4``; after ``result_url_ttl_seconds`` from
completion the link answers 403 with an XML body containing "Request has expired".

Prompt directives (per task, so an end-to-end test can drive each job's outcome):
    ``[sim:fail]``       the task ends failed (evolink ``error.code = "generation_failed"``) /
                         error (aimlapi ``error.name = "GenerationError"``) after its run time
    ``[sim:never]``      the task never finishes (stays generating / processing, progress <= 99)
    ``[sim:seconds=N]``  this task runs N seconds (float) instead of ``task_seconds``

Picture edits follow prompt keywords; see ``devstack.simulator.editor``. Like the model
(``devstack.simulator.limits``; ``providers/README.md``, "The model's own limits"), every output
runs at 24 fps whatever the input's rate (pictures repeated or dropped by their timestamps, never
blended), lasts as long as the input (within half an output frame; AAC audio, when kept, may run
up to one AAC frame, 21 ms, longer), and shows a rotated input as a player shows it.

Strict mode (``strict``, default false; ``POST /_sim/config {"strict": true}``): when a task
starts, an input outside the model's documented limits (duration < 3 s or > 10 s, width or height
outside 720..2160 px as shown, frame rate outside 24..60 fps, size over the provider's cap:
evolink 100 MB, aimlapi Kling's 200 MB) makes the task end failed, as the real model fails a bad
input, with evolink ``error.code = "invalid_request_error"`` / aimlapi ``error.name =
"InvalidRequestError"`` and a message "Invalid request parameter: video_urls: width 320 px is
outside 720..2160 px; ..." (the documented 400 body's type and message: neither provider documents
a business code for this failure). The task is created and billed first, like any task.

Control API (no auth): ``POST /_sim/config`` (JSON merged into the config; ``faults`` replaced),
``GET /_sim/config``, ``GET /_sim/stats``, ``POST /_sim/reset`` (clears tasks, counters and
faults; body ``{"config": true}`` also restores the config the simulator started with),
``GET /_sim/health``. In process: ``Simulator.configure(**changes)``, ``.add_fault(**rule)``,
``.stats()``, ``.reset(config=False)``, ``.hurry()`` (every unfinished task's queue and run
time end now, so a test can hold tasks open with a long ``task_seconds`` and then let them go).

Fault rules (``config.faults``, first matching rule wins, each applies ``times`` times, -1 =
forever; optional ``prompt_contains`` restricts callback and task faults to tasks whose prompt
has it, ``input_contains`` task faults to tasks whose input URL path has it, case-insensitive)::

    {"api": "aimlapi"|"evolink"|"*", "op": "create"|"query"|"result"|"callback"|"*",
     "kind": ..., "times": 1, ...}

Request kinds (op create/query/result; answered before any task is created):
    ``throttle``          429 with the API's error body and ``Retry-After: retry_after`` (1)
    ``unavailable``       ``status`` 500/502/503 (default 503) with the documented body
    ``slow``              sleep ``delay`` s (default 30), then answer normally (query, result)
                          or, for create, answer 503 without creating a task
    ``reset``             close the connection with an RST, no answer
    ``malformed``         200 with a truncated JSON body
    ``accept_then_slow``  (create only) create the task, then sleep ``delay`` s before answering
    ``accept_then_error`` (create only) create the task, then answer as a gateway in front of a
                          slow backend: ``status`` 502 (default), 500, 503, 504 or 408, or 200
                          with a body cut off mid-JSON
    ``html_page``         (result) 200 ``text/html`` with a sign-in page instead of the video
    ``redirect``          (result) 302 to ``location`` (default: the same URL, a redirect loop)
    ``gone``              (result) ``status`` 404 (default), 403 or 410 as S3 answers it: a CDN
                          that has not got the object yet, or a link that died
    ``noise_video``       (result) 200 ``video/mp4``: the task's edit with its media data replaced
                          by random bytes (valid MP4 boxes, pictures that do not decode)
Any rule may say ``for_seconds``: it applies for that long after its first use (with ``times``
-1, to every request until then), e.g. a result link that answers 404 for 90 s, then 200.
Callback kinds (op callback, evolink only):
    ``lost_callback``         this task's callback is never sent
    ``duplicate_callback``    the final body is delivered ``count`` (default 2) times
    ``out_of_order_callback`` after the final body, a stale earlier-state body (status
                              ``processing``, progress 50, no results/error) is delivered
    ``slow``                  the callback is sent ``delay`` s late (rule must say op "callback")

Task kinds (op create; the task is created, then ends as the rule says):
    ``fail_task``         the task ends failed (evolink ``error.code = "generation_failed"``,
                          aimlapi ``error.name = "GenerationError"``) after its run time, as
                          ``[sim:fail]`` does. With ``input_contains`` it hits only tasks whose
                          input URL path (no query string) has that substring, e.g. one part of a
                          split job. Short form: ``{"fail_task_when_input_contains": "part-0001",
                          "times": 1}`` fails the first task for part-0001 only; ``"times": -1``
                          every one.

Stats: ``tasks_created`` (successful creates only), ``tasks_created_by_api``, ``in_flight`` and
``max_in_flight`` (unfinished tasks, both APIs together; ``concurrency_limit`` counts the same),
``requests`` ({"aimlapi.create": n, ...}, every request received, faulted or not),
``callbacks_sent`` (HTTP attempts), ``callbacks_delivered`` (2xx), ``callbacks_failed`` (gave up),
``callbacks_dropped`` (lost_callback), ``status_429`` (of which ``status_429_concurrency``
for going over ``concurrency_limit``), ``faults_applied``, ``credits_spent``,
``credits_remaining``, ``tasks_created_by_input`` ({input URL path: tasks created}, so a test
can tell which parts were paid for again), ``tasks`` ([{id, api, prompt, input_path, status,
...}]; ``input_path`` is the input URL's path without its query string or signature).

CLI: ``python -m devstack.simulator --host 127.0.0.1 --port 8765 [--task-seconds N]
[--queue-seconds N] [--api-key KEY ...] [--allow-insecure-callbacks] [--strict]``.
"""

from devstack.simulator.server import FAULT_KINDS, SimConfig, Simulator

__all__ = ["FAULT_KINDS", "SimConfig", "Simulator"]
