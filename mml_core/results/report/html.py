"""Small self-contained HTML: tables and pages with their own style (no scripts, no external files),
readable in the report's frame, in a browser from disk, and in a test's HTML parser."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em; color: #1f2933; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table.mml { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
table.mml th, table.mml td { border: 1px solid #d5dae1; padding: 0.3em 0.7em; }
table.mml th { background: #eef2f6; text-align: left; }
table.mml td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: #f6f8fa; border: 1px solid #d5dae1; padding: 0.8em; overflow-x: auto; font-size: 0.88em; }
p.note { color: #52606d; font-size: 0.9em; }
"""


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1, caption: str = "") -> str:
    """An HTML table; cells from column ``numeric_from`` on are right-aligned numbers."""

    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag}{" class=num" if tag == "td" and i >= numeric_from else ""}>{escape(str(cell))}</{tag}>'
            for i, cell in enumerate(row)
        )

    head = f"<caption>{escape(caption)}</caption>" if caption else ""
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return f'<table class="mml">{head}<thead><tr>{cells(header, "th")}</tr></thead><tbody>{body}</tbody></table>'


def preformatted(text: str) -> str:
    """Text as it is (a YAML file, a list of overrides)."""
    return f"<pre>{escape(text)}</pre>"


def paragraph(text: str, note: bool = False) -> str:
    """A paragraph of plain text."""
    return f'<p{" class=note" if note else ""}>{escape(text)}</p>'


def section(title: str, *parts: str) -> str:
    """A titled section of already rendered parts."""
    return f"<h2>{escape(title)}</h2>" + "".join(parts)


def page(title: str, *parts: str) -> str:
    """A complete HTML document."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def raw_rst(title: str, body: str) -> str:
    """An RST page for Snakemake's ``report:`` directive: ``title`` and the HTML ``body``, kept out of
    the Jinja templating Snakemake applies to the file."""
    lines = "\n".join(f"   {line}" for line in body.splitlines())
    return f"{{% raw %}}\n{title}\n{'=' * len(title)}\n\n.. raw:: html\n\n{lines}\n\n{{% endraw %}}\n"
