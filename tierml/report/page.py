"""A self-contained HTML page: headings, tables and matplotlib figures inlined as SVG."""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

import tierml

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem} td,th{padding:.25rem .6rem;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#666;font-size:.85rem} .bad{color:#b00020} .good{color:#137333} figure{margin:.8rem 0}
figcaption{color:#555;font-size:.85rem}
"""


class Page:
    """Build a report section by section, then `render()` it."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.parts.append(f'<p class="meta">{html.escape(subtitle)} &middot; tierml {tierml.__version__} '
                          f"&middot; {stamp}</p>")

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for cell in row:
                numeric = isinstance(cell, int | float)
                value = f"{cell:,.4g}" if isinstance(cell, float) else (f"{cell:,}" if isinstance(cell, int) else cell)
                cells.append(f'<td class="num">{value}</td>' if numeric else f"<td>{html.escape(str(value))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def figure(self, fig: Figure, caption: str = "") -> None:
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        svg = buffer.getvalue()
        svg = svg[svg.index("<svg"):]
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f"<figure>{svg}{cap}</figure>")

    def render(self) -> str:
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}'
                f"</title><style>{_CSS}</style></head><body>{''.join(self.parts)}</body></html>\n")


def new_figure(width: float = 9.0, height: float = 3.6) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(True, alpha=0.3)
    return fig, ax
