"""Schemathesis hooks for tests/api/schemathesis.rs.

OpenAPI cannot say that one parameter depends on another, or on the agent's
config and clock. These hooks teach the generator the three such rules of the
API, and touch nothing else, so that a case generated as schema-valid stays
valid and every check keeps its meaning:

- `since` must not be after `until`, on every route that takes a window
  (equal ends are an empty window, answered, so they are left as they are);
- a series holds at most 10000 buckets (every metric's series: 2000) of `step` (default `5m`) over
  `since`..`until` (default: the hour before now);
- a silence names a configured rule (`fuzz-cpu`, see schemathesis.rs) and
  exactly one end, `until` ahead of now or `for`.

Negative cases, and values that are not date-times, are left alone.
"""

import math
from datetime import datetime, timedelta, timezone

import schemathesis
from schemathesis import GenerationMode

WINDOWS = {
    "/api/v1/checks",
    "/api/v1/checks/export",
    "/api/v1/checks/summary",
    "/api/v1/checks/{metric}/series",
    "/api/v1/checks/series",
    "/api/v1/alerts",
}
# One metric's series and every metric's (the dashboard's) share the rules,
# but for how many buckets a window may hold.
SERIES = {"/api/v1/checks/{metric}/series": 10_000, "/api/v1/checks/series": 2_000}
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def instant(value):
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def rfc3339(t):
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def seconds(step):
    """The step in seconds, for the `[1-9][0-9]*(ms|s|m|h|d)` forms the document gives."""
    if not isinstance(step, str):
        return None
    step = step.strip()
    for unit in ("ms", "s", "m", "h", "d"):
        if step.endswith(unit) and step[: -len(unit)].isdigit():
            return int(step[: -len(unit)]) * UNITS[unit]
    return None


SILENCES = "/api/v1/silences"
RULE = "fuzz-cpu"


def silence(case):
    body = case.body
    if not isinstance(body, dict):
        return case
    body["rule"] = RULE
    if "until" in body:
        body.pop("for", None)
        body["until"] = rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
    else:
        body["for"] = "1h"
    return case


@schemathesis.hook
def map_case(ctx, case):
    meta = case.meta
    if meta is None:
        return case
    if case.operation.path == SILENCES and case.operation.method.upper() == "POST":
        if meta.generation.mode == GenerationMode.POSITIVE:
            return silence(case)
        return case
    if case.operation.path not in WINDOWS:
        return case
    if meta.generation.mode != GenerationMode.POSITIVE or not isinstance(case.query, dict):
        return case
    q = case.query
    since, until = instant(q.get("since")), instant(q.get("until"))
    if since is not None and until is not None and since > until:
        q["since"], q["until"] = rfc3339(until), rfc3339(since + timedelta(seconds=1))
        since, until = instant(q["since"]), instant(q["until"])
    if case.operation.path not in SERIES:
        return case
    end = until or datetime.now(timezone.utc)
    if since is not None and until is None and since >= end - timedelta(seconds=5):
        # A `since` in the future (or about now) with `until` defaulting to now.
        end = since + timedelta(hours=1)
        q["until"] = rfc3339(end)
    start = since or end - timedelta(hours=1)
    step = seconds(q.get("step")) if "step" in q else 300
    if step is not None:
        span = (end - start).total_seconds()
        most = SERIES[case.operation.path]
        if math.ceil(span / step) > most:
            q["step"] = f"{math.ceil(span / most / 86400)}d"
    return case
