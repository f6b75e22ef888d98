"""HTML of the report's pages: the frame (style, the small sorting/filtering script, links
between pages), figures, and the sortable index table. Pure string building, no I/O."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-top: 1px solid #ccc;
padding-top: 1em; } table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th { background: #f4f4f4; } figure { display: inline-block; margin: 0.3em; vertical-align: top; }
figcaption { font-size: 0.85em; text-align: center; max-width: 300px; }
img { max-width: 100%; height: auto; } img.px { image-rendering: pixelated; image-rendering: crisp-edges; }
.meta, .note { color: #555; font-size: 0.9em; } .note { max-width: 60em; }
.warning { color: #900; background: #fee; border: 1px solid #c99; padding: 0.5em; }
nav.pages { margin: 1em 0; } nav.pages a, nav.pages b { margin-right: 0.5em; }
table.index th { cursor: pointer; user-select: none; }
table.index th[aria-sort=ascending]::after { content: " \\25B2"; }
table.index th[aria-sort=descending]::after { content: " \\25BC"; }
table.index td:first-child, table.index td:nth-child(2) { text-align: left; }
.scroll { max-height: 30em; overflow-y: auto; display: inline-block; }
.t { display: inline-block; background-repeat: no-repeat; vertical-align: top; }
svg.curves text { fill: #444; stroke: none; } .bad { color: #c00; }
section.pair figure { text-align: center; }
"""

#: Click a header of ``table.index`` to sort by it (again: the other way); type in
#: ``#filter`` to keep the rows that contain the text. Numbers sort as numbers, "—" last.
SCRIPT = """
(function () {
  var table = document.querySelector("table.index");
  if (!table) return;
  var body = table.tBodies[0];
  function key(row, col) {
    var text = row.cells[col].textContent.trim();
    var number = parseFloat(text);
    return isNaN(number) ? text.toLowerCase() : number;
  }
  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
        other.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var order = compare(key(a, col), key(b, col));
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  var box = document.getElementById("filter");
  box.addEventListener("input", function () {
    var needle = box.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var keep = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0;
      row.style.display = keep ? "" : "none";
      shown += keep ? 1 : 0;
    });
    document.getElementById("shown").textContent = shown;
  });
})();
"""

#: The index of a run's pairs, paged in the browser: ``window.REPORT_INDEX`` (written by
#: ``<picture folder>/index.js``: ``head``, ``rows`` of cell texts, ``links``, ``bad`` flags,
#: ``page_rows``) shown ``page_rows`` rows at a time in ``table.pairs``; click a header to sort
#: every row by it (again: the other way), type in ``#index-filter`` to keep the rows holding
#: the text, tick ``#index-bad`` for the pairs with a mask not converged; ``#index-prev`` and
#: ``#index-next`` page through them. Without the script the first rows, written in the page,
#: stay.
INDEX_SCRIPT = """
(function () {
  var data = window.REPORT_INDEX, table = document.querySelector("table.pairs");
  if (!data || !table) return;
  var body = table.tBodies[0], size = data.page_rows, start = 0;
  var order = data.rows.map(function (row, i) { return i; }), shown = order;
  var heads = table.tHead.rows[0].cells;
  var box = document.getElementById("index-filter"), bad = document.getElementById("index-bad");
  var prev = document.getElementById("index-prev"), next = document.getElementById("index-next");
  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
  }
  function key(i, col) {
    var text = data.rows[i][col], number = parseFloat(text);
    return isNaN(number) ? text.toLowerCase() : number;
  }
  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }
  function render() {
    var html = shown.slice(start, start + size).map(function (i) {
      var cells = data.rows[i];
      return "<tr" + (data.bad[i] ? ' class="bad"' : "") + '><td><a href="' +
        esc(data.links[i]) + '">' + esc(cells[0]) + "</a>" +
        cells.slice(1).map(function (c) { return "<td>" + esc(c); }).join("");
    });
    body.innerHTML = html.join("");
    var last = Math.min(start + size, shown.length);
    document.getElementById("index-range").textContent =
      (shown.length ? start + 1 : 0) + "–" + last + " of " + shown.length;
    prev.disabled = start === 0;
    next.disabled = last >= shown.length;
  }
  function select() {
    var needle = box.value.trim().toLowerCase();
    shown = order.filter(function (i) {
      if (bad.checked && !data.bad[i]) return false;
      return !needle || data.rows[i].join(" ").toLowerCase().indexOf(needle) >= 0;
    });
    start = 0;
    render();
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      order = order.slice().sort(function (a, b) {
        var result = compare(key(a, col), key(b, col));
        return (up ? result : -result) || a - b;
      });
      select();
    });
  });
  box.addEventListener("input", select);
  bad.addEventListener("change", select);
  prev.addEventListener("click", function () { start = Math.max(0, start - size); render(); });
  next.addEventListener("click", function () { start += size; render(); });
  render();
})();
"""


#: Most non-converged masks a page names (summary.json lists them all; the index of a run's
#: pairs shows them with its "only not converged" box).
LISTED_MASKS = 12


def esc(value: object) -> str:
    return html.escape(str(value))


def number(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` decimals; "—" for a missing (NaN) one."""
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def page_html(title: str, body: Sequence[str], script: str = "", style: str = "") -> str:
    """A whole page: head (title, :data:`STYLE` and ``style``), the body parts, then
    ``script`` (HTML: ``<script>`` elements) at the end."""
    tail = f"{script}\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}{style}</style></head><body>\n"
        + "\n".join(part for part in body if part)
        + f"\n{tail}</body></html>\n"
    )


def page_links(files: Sequence[str], current: int, first_pair: Sequence[int]) -> str:
    """Links to every page (the current one in bold) with previous / next; empty for one
    page. ``first_pair[i]`` numbers page i's first pair (1-based) for the link titles."""
    if len(files) < 2:
        return ""
    links = []
    if current > 0:
        links.append(f'<a href="{esc(files[current - 1])}" rel="prev">← previous</a>')
    for i, name in enumerate(files):
        label = "summary · 1" if i == 0 else str(i + 1)
        title = f"pairs from {first_pair[i]}"
        if i == current:
            links.append(f"<b>{label}</b>")
        else:
            links.append(f'<a href="{esc(name)}" title="{title}">{label}</a>')
    if current < len(files) - 1:
        links.append(f'<a href="{esc(files[current + 1])}" rel="next">next →</a>')
    return f'<nav class="pages">pages: {" ".join(links)}</nav>'


def figure(
    src: str,
    alt: str,
    caption: str,
    width: int | None = None,
    href: str | None = None,
    pixelated: bool = False,
    lazy: bool = False,
) -> str:
    """A ``<figure>``: the image (shown ``width`` px wide; sharp pixels when ``pixelated``;
    loaded when scrolled to when ``lazy``), linked to ``href`` when given, and its caption."""
    attributes = [f'alt="{esc(alt)}"', f'src="{esc(src)}"']
    if width:
        attributes.append(f'width="{width}"')
    if pixelated:
        attributes.append('class="px"')
    if lazy:
        attributes.append('loading="lazy"')
    image = f"<img {' '.join(attributes)}>"
    if href:
        image = f'<a href="{esc(href)}">{image}</a>'
    return f"<figure>{image}<figcaption>{esc(caption)}</figcaption></figure>"


def pairs_table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    links: Sequence[str],
    bad: Sequence[bool],
    total: int,
    failed: int,
) -> str:
    """The index of the pairs as the page holds it: its filter box, "only not converged" box
    and pager, then ``table.pairs`` with the first ``rows`` (cell texts, the first linked to
    ``links[i]``, marked where ``bad``); :data:`INDEX_SCRIPT` shows the rest, ``total`` pairs
    of which ``failed`` have a mask not converged."""
    cells = "".join(f'<th scope="col">{esc(c)}</th>' for c in head)
    body = []
    for row, link, marked in zip(rows, links, bad, strict=True):
        css = ' class="bad"' if marked else ""
        first = f'<a href="{esc(link)}">{esc(row[0])}</a>'
        body.append(f"<tr{css}><td>{first}" + "".join(f"<td>{esc(c)}" for c in row[1:]))
    controls = (
        '<p><label>filter: <input id="index-filter" type="search" placeholder="text in any '
        f'column"></label> <label><input id="index-bad" type="checkbox"> only the {failed} '
        'pairs with a mask not converged</label> <button id="index-prev" type="button">← '
        f'previous</button> pairs <span id="index-range">1–{len(rows)} of {total}</span> '
        '<button id="index-next" type="button">next →</button> · click a column header to '
        "sort all pairs by it.</p>"
    )
    return (
        controls
        + f'<div class="scroll"><table class="index pairs"><thead><tr>{cells}</tr></thead>'
        + "<tbody>"
        + "\n".join(body)
        + "</tbody></table></div>"
    )


def filter_line(count: int, noun: str) -> str:
    """The box the page's script filters the ``table.index`` rows with, and their count."""
    return (
        '<p><label>filter rows: <input id="filter" type="search" placeholder="text in any '
        f'column"></label> <span id="shown">{count}</span> of {count} {noun} shown; '
        "click a column header to sort.</p>"
    )


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A sortable ``table.index`` (the page's script sorts it by a header's click): the column
    names ``head`` and rows of cells that are HTML already."""
    cells = "".join(f'<th scope="col">{esc(c)}</th>' for c in head)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) for row in rows)
    return (
        f'<div class="scroll"><table class="index"><thead><tr>{cells}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
