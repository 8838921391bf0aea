"""A report people look at: one document written as ``report.html`` and ``report.md``.

An evaluation's report is a :class:`Document`: a title, a few lines saying what was scored,
and :class:`Section` s holding paragraphs, bullet lists, :class:`Table` s and
:class:`Figure` s (PNG files already written into the output folder). :func:`write_pages`
renders it twice:

- ``report.html``: self-contained. Every figure is embedded as a base64 ``data:`` PNG, the
  style sheet is inline, and there is no script and no link to anything outside the file,
  so it opens from a disk, a mail attachment or an air-gapped workstation as it is.
- ``report.md``: the same content for a repository or a wiki, figures as links relative to
  the output folder (``![caption](roc_curve.png)``), so it renders beside the PNGs.

Confidence intervals of fewer than :data:`MIN_CASES_FOR_CI` cases are flagged
(:func:`ci_cell`): a table cell marked ``warn`` is shaded in the HTML and prefixed with a
warning sign in Markdown, and a note under the table says why.

This module knows nothing about segmentation or classification; the content comes from
:mod:`medimg.metrics.report_page` and :mod:`medimg.metrics.classification.report_page`.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "MIN_CASES_FOR_CI",
    "Bullets",
    "REPORT_HTML",
    "REPORT_MD",
    "Cell",
    "Document",
    "Figure",
    "Section",
    "Table",
    "ci_cell",
    "figures",
    "fmt",
    "footer_line",
    "write_pages",
]

#: An interval from fewer cases than this is flagged as unreliable.
MIN_CASES_FOR_CI = 10
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
#: The note printed under a table holding flagged intervals.
UNRELIABLE_NOTE = (
    f"⚠ marks an interval from fewer than {MIN_CASES_FOR_CI} cases: a bootstrap interval from so few "
    "cases is unreliable (too narrow, and it may not contain the true value as often as stated)."
)


@dataclass
class Cell:
    """A table cell; ``warn`` marks it (shaded in HTML, ⚠ in Markdown)."""

    text: str
    warn: bool = False


@dataclass
class Table:
    """A table: ``header`` names the columns; each row holds strings or :class:`Cell` s."""

    header: list[str]
    rows: list[list[str | Cell]]
    caption: str = ""

    @property
    def has_warnings(self) -> bool:
        return any(isinstance(c, Cell) and c.warn for row in self.rows for c in row)


@dataclass
class Figure:
    """A PNG file in the output folder, with a caption."""

    path: Path
    caption: str


@dataclass
class Bullets:
    """A bullet list."""

    items: list[str]


@dataclass
class Section:
    """A titled part of the report: its blocks in order (a ``str`` is a paragraph)."""

    title: str
    blocks: list[str | Table | Figure | Bullets] = field(default_factory=list)

    def add(self, *blocks: str | Table | Figure | Bullets) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    """The whole report: title, lines of what was scored (``about``), sections."""

    title: str
    about: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def fmt(x: float | None, digits: int = 4) -> str:
    """A number for a table: ``n/a`` for None or NaN, ``inf`` kept as such."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def ci_cell(low: float | None, high: float | None, n: int, digits: int = 4) -> Cell:
    """``[low, high]``, flagged when it comes from fewer than :data:`MIN_CASES_FOR_CI` cases."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return Cell("n/a")
    text = f"[{fmt(low, digits)}, {fmt(high, digits)}]"
    if n < MIN_CASES_FOR_CI:
        return Cell(f"{text} unreliable (n={n})", warn=True)
    return Cell(text)


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1040px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:1.6em;margin:0 0 .4em;border-bottom:3px solid #2c5d8f;padding-bottom:.3em}
h2{font-size:1.25em;margin:1.8em 0 .6em;color:#2c5d8f;border-bottom:1px solid #d5dbe3;padding-bottom:.2em}
.about{color:#4a5568;font-size:.92em;margin:.1em 0}
.alert{background:#fdecea;border-left:4px solid #c0392b;color:#7b1d12;padding:6px 10px;margin:.3em 0 .6em;font-weight:600}
table{border-collapse:collapse;margin:.6em 0 .4em;font-size:.88em}
th,td{border:1px solid #d5dbe3;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef2f7;font-weight:600}
tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.warn,tr:nth-child(even) td.warn{background:#fff3cd;color:#7a4d00;white-space:nowrap}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0;color:#333}
figure{margin:1em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #d5dbe3}
figcaption{font-size:.86em;color:#4a5568;margin-top:4px;max-width:640px}
.note{font-size:.85em;color:#7a4d00}
ul{margin:.3em 0 .6em}
footer{margin-top:2.5em;font-size:.8em;color:#718096}
"""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text in ("n/a", "inf", "-inf") or text.startswith("[")
    return True


def _html_table(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
    for row in t.rows:
        cells = []
        for c in row:
            cell = c if isinstance(c, Cell) else Cell(str(c))
            cls = "warn" if cell.warn else ("num" if _is_number(cell.text) else "")
            attr = f' class="{cls}"' if cls else ""
            text = ("⚠ " if cell.warn else "") + cell.text
            cells.append(f"<td{attr}>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if t.has_warnings:
        out.append(f'<p class="note">{html.escape(UNRELIABLE_NOTE)}</p>')
    return "\n".join(out)


def _html_figure(f: Figure) -> str:
    data = base64.b64encode(Path(f.path).read_bytes()).decode("ascii")
    cap = html.escape(f.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{cap}">'
            f"<figcaption>{cap}</figcaption></figure>")


def _html_block(b: str | Table | Figure | Bullets) -> str:
    if isinstance(b, Table):
        return _html_table(b)
    if isinstance(b, Figure):
        return _html_figure(b)
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>"
    return f"<p>{html.escape(b)}</p>"


def render_html(doc: Document, footer: str = "") -> str:
    """The document as one self-contained HTML page (figures must exist on disk)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{html.escape(doc.title)}</h1>",
        *(f'<p class="{"alert" if line.startswith("⚠") else "about"}">{html.escape(line)}</p>' for line in doc.about),
    ]
    for s in doc.sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts.extend(_html_block(b) for b in s.blocks)
        parts.append("</section>")
    if footer:
        parts.append(f"<footer>{html.escape(footer)}</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------
def _md_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    out = [f"**{_md_text(t.caption)}**", ""] if t.caption else []
    out.append("| " + " | ".join(_md_text(h) for h in t.header) + " |")
    out.append("|" + "|".join("---" for _ in t.header) + "|")
    for row in t.rows:
        cells = [c if isinstance(c, Cell) else Cell(str(c)) for c in row]
        out.append("| " + " | ".join(("⚠ " if c.warn else "") + _md_text(c.text) for c in cells) + " |")
    if t.has_warnings:
        out.extend(["", f"*{UNRELIABLE_NOTE}*"])
    return "\n".join(out)


def _md_block(b: str | Table | Figure | Bullets, out_dir: Path) -> str:
    if isinstance(b, Table):
        return _md_table(b)
    if isinstance(b, Figure):
        try:
            rel = Path(b.path).resolve().relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            rel = Path(b.path).as_posix()
        return f"![{_md_text(b.caption)}]({rel})\n\n*{_md_text(b.caption)}*"
    if isinstance(b, Bullets):
        return "\n".join(f"- {i}" for i in b.items)
    return b


def render_markdown(doc: Document, out_dir: Path, footer: str = "") -> str:
    """The document as Markdown; figures linked relative to ``out_dir``."""
    parts = [f"# {doc.title}", ""]
    parts.extend(f"{line}  " for line in doc.about)
    for s in doc.sections:
        parts.extend(["", f"## {s.title}", ""])
        for b in s.blocks:
            parts.extend([_md_block(b, out_dir), ""])
    if footer:
        parts.extend(["", f"*{footer}*"])
    return "\n".join(parts).rstrip() + "\n"


def write_pages(doc: Document, out_dir: str | Path, footer: str = "") -> dict[str, Path]:
    """Write ``report.html`` and ``report.md`` into ``out_dir``.

    Returns:
        ``{"report_html": path, "report_md": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out / REPORT_HTML, out / REPORT_MD
    html_path.write_text(render_html(doc, footer), encoding="utf-8")
    md_path.write_text(render_markdown(doc, out, footer), encoding="utf-8")
    return {"report_html": html_path, "report_md": md_path}


def footer_line() -> str:
    """``written by medimg <version> on <UTC time>``."""
    try:
        from importlib.metadata import version

        v = version("medimg")
    except Exception:  # noqa: BLE001  an uninstalled checkout has no metadata
        v = "(development checkout)"
    return f"written by medimg {v} on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"


def figures(paths: Sequence[tuple[Path | None, str]]) -> list[Figure]:
    """The :class:`Figure` s of the ``(path, caption)`` pairs whose PNG exists."""
    return [Figure(Path(p), cap) for p, cap in paths if p is not None and Path(p).is_file()]
