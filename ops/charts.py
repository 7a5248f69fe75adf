"""Charts for the self-contained HTML reports (``ops usage --html``, ``ops compare``): matplotlib figures,
inline SVG."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ops.errors import OpsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def figure_class(report: str) -> type[Figure]:
    """matplotlib's ``Figure``, or one line saying ``report`` needs matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise OpsError(
            f"matplotlib is not installed: the {report} draws its charts with it",
            hint="pip install 'matplotlib==3.11.2'",
        ) from exc
    return Figure


def svg(figure: Figure) -> str:
    """``figure`` as an ``<svg>`` element (no XML prolog or DOCTYPE: it sits inside HTML), no date in it."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]
