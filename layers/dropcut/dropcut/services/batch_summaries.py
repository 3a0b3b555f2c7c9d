"""A batch's summary page: one self-contained HTML file (inline style, no script, nothing
fetched from elsewhere) with a row per input: its ending, credits, the before/after contact
sheet as a thumbnail, and links to the output or the error report.

Links are relative to the page's own key (`outbox/<folder>/_batches/<id>.html`), so the page
works wherever the bucket's objects are: opened from S3 with a presigned link to a synced copy
of the folder, or from the web console.
"""

from __future__ import annotations

import posixpath
import time
from html import escape
from urllib.parse import quote

from dropcut.model.batches import BatchMember, BatchSummary

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.3rem}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;vertical-align:middle}
th{background:#f5f5f5}.done{color:#176f2c}.failed{color:#a4161a}.cancelled{color:#7a5c00}
img{width:160px;height:auto;display:block}.num{text-align:right}
"""


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else ""


def _relative(page_key: str, key: str) -> str:
    """`key` as a URL relative to the page's key (percent-encoded: a key may hold `#`, `?`)."""
    return quote(posixpath.relpath(key, posixpath.dirname(page_key)), safe="/")


def _link(page_key: str, key: str | None, text: str) -> str:
    if not key:
        return ""
    return f'<a href="{escape(_relative(page_key, key))}">{escape(text)}</a>'


def _row(page_key: str, member: BatchMember) -> str:
    phase = member.phase.value if member.phase else "not ended"
    sheet = ""
    if member.sheet_key:
        src = escape(_relative(page_key, member.sheet_key))
        sheet = f'<img src="{src}" alt="before and after" loading="lazy">'
    credits = f"{member.credits:g}" if member.credits is not None else ""
    links = " ".join(
        link
        for link in (
            _link(page_key, member.output_key, "output"),
            _link(page_key, member.report_key, "error report"),
        )
        if link
    )
    return (
        f"<tr><td>{escape(member.key)}</td>"
        f'<td class="{escape(phase)}">{escape(phase)}'
        f"{': ' + escape(member.reason) if member.reason else ''}</td>"
        f'<td class="num">{credits}</td><td>{sheet}</td><td>{links}</td></tr>'
    )


def render_page(summary: BatchSummary, page_key: str) -> str:
    """The summary as an HTML page stored at `page_key` (its links are relative to it)."""
    batch = summary.batch
    head = (
        f"{batch.jobs} jobs: {batch.succeeded} done, {batch.failed} failed, "
        f"{batch.cancelled} cancelled; credits {batch.credits_spent:g} spent "
        f"(estimated {batch.credits_estimated:g})"
    )
    rows = "\n".join(_row(page_key, member) for member in summary.jobs)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>dropcut batch {escape(batch.batch_id)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Batch {escape(batch.batch_id)} in {escape(batch.folder)}</h1>"
        f"<p>{escape(head)}</p>"
        f"<p>First job {_when(batch.created_at)}; completed {_when(batch.completed_at)}.</p>"
        "<table><thead><tr><th>Input</th><th>Ending</th><th>Credits</th>"
        "<th>Before / after</th><th>Links</th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table></body></html>\n"
    )
