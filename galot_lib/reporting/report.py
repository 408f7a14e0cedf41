"""The report a reader opens: a run's executed notebooks as HTML pages and an index page, in one folder.

``python -m galot_lib.reporting.report --profile embedded`` (``run_all.sh`` runs it after the notebooks) writes
``results/<profile>/report/``: ``index.html`` (the run's findings, its headline family and learning curves, each section's main table and figures,
links to the full notebooks) and one page per executed notebook (nbconvert's ``basic`` template, without prompts).
Every page stands alone: figures are embedded as base64 data, the style is inline, there is no script and nothing
is fetched from anywhere. The executed notebooks are checked on the way (:func:`notebook_problems`: a path of the
machine, a progress widget, an error, a figure shown twice) and stamped as checked (``metadata.galot``), which the
committed-notebook test reads; a run with a problem still gets its report, and the command exits non-zero.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from ..core.io import write_text
from ..core.paths import REPO, results_root, shown
from ..core.provenance import check_same_code, code_version
from ..experiments.registry import REGISTRY, SECTIONS
from .results import code_versions
from .results_page import write as write_results_page

REPORT_DIR = "report"
STAMP = "galot"  # notebook metadata key: {"report": REPORT_DIR} once the report step has checked the notebook
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")
# Folders a path of a machine starts with (Linux, macOS, containers, Windows drives); checked in text, never in images.
MACHINE_PATH = re.compile(
    r"(?<![\w.~$-])(?:/(?:work|home|tmp|root|Users|var|opt|mnt|srv|scratch|private|data)/"
    r"|[A-Za-z]:\\\\?[A-Za-z])"
)
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
# Each section's main table and figure on the index page (file names or glob patterns in results/<profile>/<section>/,
# the registry's records; a section without one gets its link and its figures).
MAIN_TABLES = {s.id: s.main_table for s in REGISTRY if s.main_table}
MAIN_FIGURES = {s.id: s.main_figure for s in REGISTRY if s.main_figure}
INDEX_FIGURE_PX = 900  # figures on the index page are at most this wide (re-encoded with a palette: light)

STYLE = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1, h2, h3 { line-height: 1.2; } a { color: #0b5cad; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; } th { background: #f4f4f4; }
img { max-width: 100%; height: auto; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 13px; }
.input_area pre { border-left: 3px solid #9ab; }
.output_stream pre, .output_text pre { background: none; border: 0; }
.output_stderr pre { background: #fff3f3; }
.nav { font-size: 13px; color: #666; } .headline li { margin: 0.2em 0; }
section.sec { border-top: 1px solid #ccc; margin-top: 2em; }
"""


# ----------------------------------------------------------------------------- checks
def machine_paths(text: str) -> list[str]:
    """The paths of a machine that ``text`` names (embedded data stripped first), with some context each."""
    text = DATA_URI.sub("data:", text)
    found = [text[max(0, m.start() - 30) : m.end() + 30] for m in MACHINE_PATH.finditer(text)]
    for root in {str(REPO), str(Path.home()), str(results_root().absolute())}:
        if len(root) > 1 and root in text:
            found.append(root)
    return found


def notebook_problems(nb: dict) -> list[str]:
    """What a reader of this executed notebook should not meet: a path of the machine in an output, a progress
    widget (or saved widget state), an error, a figure shown twice."""
    problems = []
    if "widgets" in nb.get("metadata", {}):
        problems.append("saved widget state in the notebook's metadata")
    images = Counter()
    for number, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            where = f"cell {number}"
            kind = out.get("output_type")
            if kind == "error":
                problems.append(f"{where}: an error ({out.get('ename')}: {out.get('evalue')})")
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                problems.append(f"{where}: a widget ({data.get('text/plain', '')!s:.60})")
            texts = [out.get("text", "")] + [data.get(m, "") for m in TEXT_MIMES] + out.get("traceback", [])
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text if isinstance(text, str) else json.dumps(text)
                for hit in machine_paths(text):
                    problems.append(f"{where}: a path of the machine: ...{hit}...")
            for mime, value in data.items():
                if mime.startswith("image/"):
                    images["".join(value) if isinstance(value, list) else value] += 1
    if any(count > 1 for count in images.values()):
        problems.append(f"{sum(c - 1 for c in images.values() if c > 1)} figure(s) shown more than once")
    return problems


def report_problems(text: str) -> list[str]:
    """What a self-contained report page must not hold: a path of the machine, a script, a request elsewhere."""
    problems = [f"a path of the machine: ...{hit}..." for hit in machine_paths(text)]
    problems += [f"a script: {m.group(0)[:80]}" for m in re.finditer(r"<script\b[^>]*>", text, re.I)]
    problems += [
        f"an external request: {m.group(0)[:80]}"
        for m in re.finditer(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//[^"')\s>]+""", text, re.I)
    ]
    return problems


# ----------------------------------------------------------------------------- pages
def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}{_code_style()}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _code_style() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


def notebook_title(nb: dict, fallback: str) -> str:
    """The notebook's first heading (its paper section)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", ""))
            match = re.search(r"^#+\s*(.+)$", source, re.M)
            if match:
                return match.group(1).strip()
    return fallback


def notebook_page(nb: dict, title: str) -> str:
    """One executed notebook as a standalone page: code, text, tables and figures; scripts dropped."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    body = re.sub(r"<script\b.*?</script>", "", body, flags=re.S | re.I)
    nav = '<p class="nav"><a href="index.html">report index</a></p>'
    return page(title, nav + body + nav)


def png_data_uri(path: Path, max_width: int = INDEX_FIGURE_PX) -> str:
    """A figure file as a data URI, at most ``max_width`` wide, with a 256-colour palette (plots lose nothing)."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(256).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def section_tables(folder: Path, section: str) -> list[Path]:
    pattern = MAIN_TABLES.get(section)
    if not pattern:
        return []
    return [p for p in sorted(folder.glob(pattern)) if not p.stem.endswith("_sem")]


def section_figures(folder: Path, section: str) -> list[Path]:
    """The section's figures, its main one first."""
    main = MAIN_FIGURES.get(section)
    return sorted(folder.glob("*.png"), key=lambda p: (p.name != main, p.name))


def table_html(path: Path) -> str:
    table = pd.read_csv(path, index_col=0)
    return table.to_html(float_format=lambda v: f"{v:.4f}", na_rep="", border=0)


def headline_html(results: Path) -> str:
    """The run's findings, its headline family (forest plot and table) and its learning curves with their check, from
    the files :func:`results_page.write` left (nothing where the run lacks Sec. 4.1)."""
    from .family import FAMILY_TABLE
    from .results_page import curve_sentence, findings

    if not (results / FAMILY_TABLE).exists():
        return "<p><i>No headline: it needs Sec. 4.1 of this run.</i></p>"
    table = pd.read_csv(results / FAMILY_TABLE)
    items = "".join(f"<li>{_inline(line.lstrip('- '))}</li>" for line in findings(table))
    family = table[
        [
            "family",
            "comparison",
            "aliases",
            "seeds",
            "difference",
            "ci_low",
            "ci_high",
            "p_holm",
            "p_equivalent_holm",
            "verdict",
            "stated",
        ]
    ]
    curves = results / "4.1" / "table1_curves.png"
    return "".join(
        [
            f'<h2>What it found</h2><ul class="headline">{items}</ul>',
            f'<h2>The headline family</h2><img alt="the headline family" src="{png_data_uri(results / "family.png")}">',
            family.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="", border=0),
            claims_html(results),
            "<h2>Learning curves</h2>",
            f'<img alt="learning curves" src="{png_data_uri(curves)}">' if curves.exists() else "",
            f"<p>{_inline(curve_sentence(pd.read_csv(results / 'curve_check.csv')))}</p>",
            f"<p>The whole page in Markdown: <code>{html.escape(shown(results / 'RESULTS.md'))}</code>.</p>",
        ]
    )


def claims_html(results: Path) -> str:
    """The claims ledger: its counts and one row per claim of the paper with the run's test and verdict."""
    from . import paper_claims

    if not (results / paper_claims.LEDGER).exists():
        return ""
    table = pd.read_csv(results / paper_claims.LEDGER)
    shown_table = pd.DataFrame(
        {
            "claim": table.claim,
            "where": table["where"],
            "the paper": table.paper,
            "the run's test": table.test.fillna(""),
            "difference [95% interval] (n)": [paper_claims.cell(r) for r in table.to_dict("records")],
            "verdict": table.stated,
        }
    )
    line = re.sub(r"\[(.+?)\]\(.+?\)", r"`\1`", paper_claims.summary_line(table))  # the page named, no link
    return "".join(
        [
            "<h2>The paper's claims</h2>",
            f"<p>{_inline(line)}</p>",
            shown_table.to_html(index=False, border=0),
        ]
    )


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` as HTML, the rest escaped."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def index_page(results: Path, notebooks: list[tuple[str, Path, dict]]) -> str:
    """The index: headline, then per section its title, main table(s), figures and links to its notebook."""
    profile = results.name
    parts = [
        f"<h1>GALOT companion: the {html.escape(profile)} run</h1>",
        f"<p>Executed notebooks of <code>{html.escape(shown(results))}</code>, one page each below; "
        "tables and figures as the run saved them beside the notebooks.</p>",
    ]
    parts.append(
        f"<p>Code: <code>{html.escape(', '.join(sorted(code_versions(results))))}</code> (this checkout: "
        f"<code>{code_version()}</code>).</p>"
    )
    parts.append(headline_html(results))
    parts.append(
        "<h2>Sections</h2><ul>"
        + "".join(
            f'<li><a href="#{_anchor(section)}">{html.escape(notebook_title(nb, path.stem))}</a></li>'
            for section, path, nb in notebooks
        )
        + "</ul>"
    )
    for section, path, nb in notebooks:
        folder = results / section
        title = notebook_title(nb, path.stem)
        parts.append(
            f'<section class="sec" id="{_anchor(section)}"><h2>{html.escape(title)}</h2>'
            f'<p class="nav"><a href="{path.stem}.html">the full notebook</a> · '
            f'<a href="../notebooks/{path.name}">{path.name}</a></p>'
        )
        for table in section_tables(folder, section):
            parts.append(f"<h3>{html.escape(table.name)}</h3>{table_html(table)}")
        for figure in section_figures(folder, section):
            parts.append(
                f'<h3>{html.escape(figure.name)}</h3><img alt="{html.escape(figure.name)}" '
                f'src="{png_data_uri(figure)}">'
            )
        parts.append("</section>")
    return page(f"GALOT companion: {profile}", "\n".join(parts))


def _anchor(section: str) -> str:
    return "sec-" + re.sub(r"[^A-Za-z0-9]+", "-", section)


def executed_notebooks(results: Path) -> list[tuple[str, Path]]:
    """(section, executed notebook) of a run, in the sections' order; notebooks of no known section last."""
    folder = results / "notebooks"
    by_name = {name: section for section, name in SECTIONS.items()}
    found = sorted(
        folder.glob("*.ipynb"), key=lambda p: (list(by_name).index(p.name) if p.name in by_name else 99, p.name)
    )
    return [(by_name.get(p.name, p.stem), p) for p in found]


def build(results: str | Path) -> tuple[Path, dict[str, list[str]]]:
    """Writes ``<results>/report/`` (index and one page per executed notebook), stamps each notebook as checked;
    returns the index's path and every notebook's problems (empty lists: clean)."""
    import nbformat

    results = Path(results)
    notebooks = [(section, path, nbformat.read(path, as_version=4)) for section, path in executed_notebooks(results)]
    if not notebooks:
        raise FileNotFoundError(f"no executed notebook under {shown(results / 'notebooks')}: run ./run_all.sh first")
    out = results / REPORT_DIR
    problems = {}
    try:
        check_same_code(code_versions(results), f"the run in {shown(results)}")
    except ValueError as err:
        problems["code version"] = [str(err)]
    if (results / "4.1" / "paired_differences.csv").exists():
        write_results_page(results)
    for section, path, nb in notebooks:
        problems[path.name] = notebook_problems(nb)
        write_text(out / f"{path.stem}.html", notebook_page(nb, notebook_title(nb, path.stem)))
        papermill = nb.get("metadata", {}).get("papermill", {})
        staged = "output_path" in papermill and papermill["output_path"] != shown(path)
        if nb.get("metadata", {}).get(STAMP) != {"report": REPORT_DIR} or staged:
            nb.setdefault("metadata", {})[STAMP] = {"report": REPORT_DIR}
            if staged:  # papermill wrote it to the run's staging folder: it lives here now
                papermill["output_path"] = shown(path)
            write_text(path, nbformat.writes(nb))
    index = write_text(out / "index.html", index_page(results, notebooks))
    for name in [p.name for p in out.glob("*.html")]:
        found = report_problems((out / name).read_text())
        if found:
            problems[f"{REPORT_DIR}/{name}"] = found
    return index, problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="write results/<profile>/report/: the executed notebooks as HTML and an "
        "index page (self-contained), and check the notebooks"
    )
    p.add_argument(
        "--profile",
        default=os.environ.get("GALOT_PROFILE", "embedded"),
        help="the run's folder under the results root (e.g. embedded, smoke, paper-rehearsal)",
    )
    p.add_argument("--results", type=Path, help="the run's folder itself (instead of --profile)")
    args = p.parse_args(argv)
    results = args.results or results_root() / args.profile
    index, problems = build(results)
    size = sum(f.stat().st_size for f in index.parent.glob("*.html"))
    print(f"== report: {shown(index)} ({len(list(index.parent.glob('*.html')))} pages, {size / 1e6:.1f} MB)")
    bad = {name: found for name, found in problems.items() if found}
    for name, found in bad.items():
        print(f"   {name}: " + "; ".join(found), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
