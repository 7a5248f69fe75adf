"""The HTML usage report of ``ops usage --html``: one self-contained file, its charts inline SVG (matplotlib).

As :mod:`ops.bench.compare_report`: nothing is fetched when the file is opened, chart text is
drawn as paths, so the file can be mailed as it is and looks the same everywhere.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from ops.charts import figure_class, svg
from ops.metering.report import Row, UsageReport, format_cost

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1d2330}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #dde;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{padding:.3rem .7rem;border-bottom:1px solid #e4e6ee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f5f9}tr.total td{font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1rem}
.charts svg{width:100%;height:auto}.meta{color:#5b6275;font-size:.9rem}
"""
HEAD = (
    "requests",
    "errors",
    "429",
    "tokens in",
    "tokens out",
    "TTFT p50 ms",
    "TTFT p95 ms",
    "cost",
)


def when(at: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM``; ``-`` for None."""
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


def ms(value: float | None) -> str:
    """Milliseconds, whole (tenths below 10); ``-`` when there were none."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def cells(row: Row) -> tuple[str, ...]:
    """A row's figures as the tables show them (in :data:`HEAD`'s order)."""
    return (
        f"{row.requests:,}",
        f"{row.errors:,}",
        f"{row.refused:,}",
        f"{row.prompt_tokens:,}",
        f"{row.completion_tokens:,}",
        ms(row.ttft_p50_ms),
        ms(row.ttft_p95_ms),
        format_cost(row.cost),
    )


def _table(title: str, rows: tuple[Row, ...], total: Row) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in (title, *HEAD))
    body = "".join(
        f"<tr{' class=total' if row is total else ''}><td>{escape(row.name)}</td>"
        + "".join(f"<td>{escape(c)}</td>" for c in cells(row))
        + "</tr>"
        for row in (*rows, total)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _charts(report: UsageReport) -> list[str]:
    Figure = figure_class("usage report")  # noqa: N806 (the class, named as matplotlib names it)
    svgs = []
    callers = sorted(report.callers, key=lambda r: r.prompt_tokens + r.completion_tokens)
    if callers:
        figure = Figure(figsize=(7, max(2.4, 0.8 + 0.28 * len(callers))), layout="constrained")
        axes = figure.add_subplot()
        names = [r.name for r in callers]
        prompt = [r.prompt_tokens for r in callers]
        axes.barh(names, prompt, label="prompt (in)")
        axes.barh(names, [r.completion_tokens for r in callers], left=prompt, label="answer (out)")
        axes.set_title("Tokens per caller")
        axes.set_xlabel("tokens")
        axes.legend(loc="lower right", frameon=False)
        svgs.append(svg(figure))
    if report.timeline:
        figure = Figure(figsize=(7, 3.4), layout="constrained")
        axes = figure.add_subplot()
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

        starts = [float(date2num(datetime.fromtimestamp(b.start))) for b in report.timeline]
        width = report.width / 86400 * 0.9  # matplotlib's dates are in days
        axes.bar(starts, [b.requests for b in report.timeline], width, align="edge", label="requests")
        axes.bar(
            starts,
            [b.failed for b in report.timeline],
            width,
            align="edge",
            color="#b42318",
            label="failed (4xx/5xx)",
        )
        axes.set_title(f"Requests per {_span(report.width)}")
        axes.set_ylim(0, max(b.requests for b in report.timeline) * 1.25)  # room for the legend
        axes.legend(loc="upper left", ncols=2, frameon=False)
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        svgs.append(svg(figure))
    return svgs


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} s"


def render(report: UsageReport) -> str:
    """The whole report as one HTML document."""
    charts = "".join(f"<div>{chart}</div>" for chart in _charts(report))
    since = "the first request" if report.since is None else when(report.since)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ops usage: {escape(report.stack)}</title>"
        f"<style>{STYLE}</style></head><body><h1>Usage of stack {escape(report.stack)}</h1>",
        f"<p class='meta'>{report.total.requests:,} requests from {escape(since)} to {escape(when(report.until))} "
        f"(local time), recorded by the gateway in {escape(report.path)}. Errors: answers of 400 or more "
        "except 429, which counts over-quota and queue-full refusals. TTFT: time from arrival to the first "
        f"token (nearest rank). Cost: priced models only (a model's <code>price:</code>); "
        f"{escape(format_cost(None))} when none was used.</p>",
    ]
    if charts:
        parts.append(f"<h2>Charts</h2><div class='charts'>{charts}</div>")
    if report.callers:
        parts.append(f"<h2>Per caller</h2>{_table('caller', report.callers, report.total)}")
    if report.models:
        parts.append(f"<h2>Per model</h2>{_table('model', report.models, report.total)}")
    parts.append("</body></html>\n")
    return "".join(parts)
