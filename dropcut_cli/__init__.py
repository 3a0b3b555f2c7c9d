"""The `dropcut` command line: submit videos to a dropcut stack, follow their jobs, fetch the
results, and check inputs locally before anything is uploaded.

Modules: `app` (the Typer application and its commands), `connection` (which stack, through
CloudFormation's stack outputs), `jobs` (reading job records, reports and result manifests),
`uploads` (manifest first, then the video, with progress), `estimate` (Submit's own checks on
local files), `display` (Rich tables, the live view, JSON).
"""
