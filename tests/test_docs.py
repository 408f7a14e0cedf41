"""The docs say what the code does: every path, command, option, notebook parameter and named function that the
README and docs/ mention exists, and every figure file they cite is committed."""

import importlib.util
import re
from pathlib import Path

import pytest

from galot_lib.experiments.profile_fields import NOTEBOOK_CHOICES, NOTEBOOK_FIELDS

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ROOTS = ("galot_lib/", "bench/", "notebooks/", "tests/", "docs/", "results/", ".ci/")
CODE = re.compile(r"`([^`\n]+)`")
BLOCK = re.compile(r"```(?:bash)?\n(.*?)```", re.S)


def commands(text: str) -> list[str]:
    """Shell commands of code blocks and inline code, continuation lines joined, comments dropped."""
    lines = [c for block in BLOCK.findall(text) for c in block.replace("\\\n", " ").splitlines()]
    lines += CODE.findall(BLOCK.sub("", text))
    return [line.split("#")[0].strip() for line in lines if line.strip()]


def options_of(command: list[str]) -> list[str]:
    return [word.split("=")[0] for word in command if word.startswith("--")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_path_named_exists(page):
    text = page.read_text()
    missing = []
    for code in CODE.findall(text):
        for word in code.replace(",", " ").split():
            word = word.strip("():;")
            if word.startswith(ROOTS) and not any(c in word for c in "<*{$"):
                if not (REPO / word.split(":")[0]).exists():
                    missing.append(word)
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_function_named_beside_its_module_exists(page):
    """`module.py`: `name`, `other` (the docs' tables) — each name is defined in that module."""
    missing = []
    text = page.read_text().replace("`:\n`", "`: `")  # a name wrapped onto the next line
    for module, names in re.findall(r"`([\w/]+\.py)`: ((?:`[\w.=()]+`(?:, )?)+)", text):
        path = REPO / module if module.startswith(ROOTS) else REPO / "galot_lib" / module
        source = path.read_text()
        for name in re.findall(r"`([\w.]+)", names):
            leaf = name.split(".")[-1]
            if not re.search(rf"(def|class) {leaf}\b|^{leaf} = |\b{leaf}: ", source, re.M):
                missing.append(f"{module}: {name}")
    assert not missing, f"{page.name} names what its module does not define: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_and_option_exists(page):
    run_all = (REPO / "run_all.sh").read_text()
    problems = []
    for line in commands(page.read_text()):
        words = line.split()
        if not words:
            continue
        if words[0] == "./run_all.sh":
            problems += [
                f"{line}: {o}" for o in options_of(words) if f"{o})" not in run_all and f"|{o})" not in run_all
            ]
            for name in words[words.index("-p") + 1 : words.index("-p") + 2] if "-p" in words else []:
                if name not in {"PROFILE", "NAME", *NOTEBOOK_FIELDS, *NOTEBOOK_CHOICES}:
                    problems.append(f"{line}: notebook parameter {name}")
        elif words[:2] == ["python", "-m"] or (words[0] in ("accelerate", "torchrun") and "-m" in words):
            module = words[words.index("-m") + 1]
            spec = importlib.util.find_spec(module) if module.startswith("galot_lib") else None
            if module.startswith("galot_lib") and spec is None:
                problems.append(f"{line}: no module {module}")
            elif spec is not None:
                source = Path(spec.origin).read_text()
                after = words[words.index(module) + 1 :]
                problems += [f"{line}: {o}" for o in options_of(after) if f'"{o}"' not in source]
        elif words[0] == "python" and len(words) > 1 and words[1].startswith("bench/") and "<" not in words[1]:
            script = REPO / words[1]
            if not script.exists():
                problems.append(f"{line}: no {words[1]}")
            else:
                problems += [f"{line}: {o}" for o in options_of(words[2:]) if f'"{o}"' not in script.read_text()]
    assert not problems, f"{page.name} shows commands or options that do not exist: {problems}"


def test_the_readme_sends_readers_to_every_docs_page():
    readme = (REPO / "README.md").read_text()
    unlinked = [p.name for p in (REPO / "docs").glob("*.md") if f"docs/{p.name}" not in readme]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


INTERVAL = re.compile(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_interval_quoted_is_a_committed_one(page):
    """A difference with its interval ("+0.6 [+0.2, +1.1]") quoted in the docs is one of a committed family's members
    (results/ and bench/results/), written by the family's own formatter: no number typed by hand."""
    import pandas as pd

    from galot_lib.reporting.family import interval

    committed = {
        interval(r.difference, r.ci_low, r.ci_high)
        for table in [*REPO.glob("results/*/family.csv"), *REPO.glob("bench/results/**/family.csv")]
        for r in pd.read_csv(table).itertuples()
    }
    quoted = set(INTERVAL.findall(page.read_text()))
    assert quoted <= committed, f"{page.name} quotes intervals no committed family holds: {sorted(quoted - committed)}"
