"""HTML for an Execution's tree in the admin: steps, their LM and tool calls, tokens, latency, errors.

Everything user- or LM-provided goes through `format_html`, so prompts cannot inject markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from cognitive.models import Execution
from cognitive.selectors_runs import steps_in_pipeline_order

_PRE = "white-space:pre-wrap;max-height:24em;overflow:auto;background:var(--darkened-bg);padding:4px"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, default=str)


def _error(error: Mapping[str, Any] | None) -> SafeString:
    if not error:
        return format_html("")
    kind, message = error.get("type", "Error"), error.get("message", "")
    return format_html("<span style='color:#ba2121'>{}: {}</span>", kind, message)


def _metrics_line(metrics: Mapping[str, Any]) -> SafeString:
    return format_html(
        "{} LM calls · {} prompt + {} completion = {} tokens · cost {} · LM time {} ms",
        metrics.get("lm_calls", 0),
        metrics.get("prompt_tokens", 0),
        metrics.get("completion_tokens", 0),
        metrics.get("total_tokens", 0),
        metrics.get("cost", 0),
        metrics.get("lm_latency_ms", 0),
    )


def _messages(messages: Iterable[Mapping[str, Any]]) -> SafeString:
    return format_html_join(
        "", "<div><b>{}</b><pre style='" + _PRE + "'>{}</pre></div>",
        ((m.get("role", ""), _text(m.get("content", ""))) for m in messages if isinstance(m, Mapping)),
    )


def _event(event: Mapping[str, Any]) -> SafeString:
    kind = event.get("type")
    if kind == "lm_call":
        head = format_html(
            "LM call · attempt {} · <code>{}</code> · {} + {} tokens · {} ms{}",
            event.get("attempt", 1), event.get("model", ""), event.get("prompt_tokens", 0),
            event.get("completion_tokens", 0), event.get("latency_ms", 0),
            " · cache hit" if event.get("cache_hit") else "",
        )
        body = format_html(
            "{}<div><b>response</b><pre style='" + _PRE + "'>{}</pre></div>",
            _messages(event.get("messages") or []), _text(event.get("response")),
        )
        return format_html("<li><details><summary>{} {}</summary>{}</details></li>", head, _error(event.get("error")),
                           body)
    if kind == "tool_call":
        return format_html(
            "<li>tool <code>{}</code>({}) → {} · {} ms {}</li>", event.get("tool", ""), _text(event.get("args")),
            _text(event.get("result")), event.get("latency_ms", 0), _error(event.get("error")),
        )
    if kind == "retrieval":
        return format_html(
            "<li>retrieve from <code>{}</code> ({}, k={}) · {} passages · {} ms</li>", event.get("corpus", ""),
            event.get("method", ""), event.get("k", ""), event.get("found", 0), event.get("latency_ms", 0),
        )
    if kind == "prediction":
        return format_html("<li>also predicted <pre style='" + _PRE + "'>{}</pre></li>", _text(event.get("extra")))
    if kind == "error":
        return format_html("<li>attempt {} failed: {}</li>", event.get("attempt", 1), _error(event.get("error")))
    return format_html("<li><pre style='" + _PRE + "'>{}</pre></li>", _text(event))


def _events(trace: Any) -> SafeString:
    events = [e for e in trace if isinstance(e, Mapping)] if isinstance(trace, list) else []
    if not events:
        return format_html("<p>no calls recorded</p>")
    return format_html("<ol>{}</ol>", mark_safe("".join(_event(e) for e in events)))  # noqa: S308 - each escaped


def _step(child: Execution) -> SafeString:
    metrics = child.metrics or {}
    link = reverse("admin:cognitive_execution_change", args=[child.pk])
    recovered = metrics.get("recovered_by") or ""
    stands_in = metrics.get("stands_in_for")
    return format_html(
        "<details style='margin:6px 0'><summary><a href='{}'><b>{}</b></a> · {} · {} · {} ms · {}{}{} {}</summary>"
        "<div style='margin-left:1.5em'>{}</div></details>",
        link, child.step_id or "(step)", metrics.get("kind", "module"), child.status, child.duration_ms or 0,
        _metrics_line(metrics),
        format_html(" · recovered by {}", recovered) if recovered else "",
        format_html(" · stands in for {}", stands_in) if stands_in else "",
        _error(child.error), _events(child.trace),
    )


def render_execution_tree(execution: Execution) -> SafeString:
    metrics = execution.metrics or {}
    header = format_html(
        "<p><b>{}</b> · {} ms · {}</p>", execution.status, execution.duration_ms or 0, _metrics_line(metrics)
    )
    children = list(steps_in_pipeline_order(execution))
    if not children:
        return format_html("{}{}{}", header, _error(execution.error), _events(execution.trace))
    attempts = sorted({child.attempt for child in children})
    sections = []
    for attempt in attempts:
        steps = mark_safe("".join(_step(c) for c in children if c.attempt == attempt))  # noqa: S308 - each escaped
        label = format_html("<h4>attempt {}</h4>", attempt) if len(attempts) > 1 else ""
        sections.append(format_html("{}{}", label, steps))
    return format_html(
        "{}{}{}", header, _error(execution.error), mark_safe("".join(sections))  # noqa: S308 - each escaped
    )
