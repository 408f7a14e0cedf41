"""A finished run's results page, ``results/<profile>/RESULTS.md``, written by the analysis code from the run's own
files (the report step writes it beside the HTML report; a test keeps the README's findings equal to it).

What it holds, in the order a reader asks: what the run found (sentences only for what the table cannot say), the
headline family as one table and one forest plot (``family``), the learning curves with their check, the seed plan's
predicted resolution beside the achieved one, notebook W's arms, the references, where the time went, and which code
made the run. Beside it: ``family.csv``, ``family.png``, ``curve_check.csv``, and the claims ledger (``CLAIMS.md``,
``paper_claims``).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from ..core.io import save_figure, save_table, write_text
from ..core.paths import shown
from ..experiments.profiles import BASELINES
from . import analysis as an
from . import paper_claims
from .analysis import half_width
from .family import EQUIVALENCE_MARGIN, FAMILY_TABLE, NO_RERUN, family_table, forest_plot
from .seed_plan import plan_path

PAGE = "RESULTS.md"


def points(value: float) -> str:
    return f"{value * 100:+.1f}"


def interval(r) -> str:
    return f"{points(r.difference)} [{points(r.ci_low)}, {points(r.ci_high)}]"


def findings(table: pd.DataFrame) -> list[str]:
    """The family's stated verdicts in a few sentences: what is better, worse or equivalent and what is not resolved
    (the primary family, average accuracy), what the secondary family (final accuracy) adds, and what the perturbed
    rerun did not reach. Intervals are the uncorrected 95% ones; verdicts are Holm-corrected."""
    margin = f"{EQUIVALENCE_MARGIN * 100:g} point"
    stated = ~table.stated.str.startswith("not claimed")
    lines = []
    primary = table[(table.family == "primary") & stated]
    for title, rows in (
        ("better", primary[primary.stated.str.contains(" better")]),
        ("worse", primary[primary.stated.str.contains(" worse")]),
    ):
        if len(rows):
            lines.append(
                f"- **{title}** on average accuracy (Holm-corrected, reached again by the perturbed rerun): "
                + "; ".join(f"{r.comparison} {interval(r)} points" for r in rows.itertuples())
            )
    equivalent = primary[primary.stated.str.startswith("equivalent")]
    if len(equivalent):
        lines.append(
            f"- **equivalent within {margin}** on average accuracy (Holm-corrected two one-sided tests): "
            + "; ".join(f"{r.comparison} {interval(r)}" for r in equivalent.itertuples())
        )
    unresolved = primary[primary.stated.str.startswith("not resolved")]
    if len(unresolved):
        lines.append(
            "- **not resolved** on average accuracy at the run's seeds (neither the Holm-corrected test of no "
            f"difference nor that of equivalence within {margin} rejects): "
            + "; ".join(f"{r.comparison} {interval(r)}" for r in unresolved.itertuples())
        )
    secondary = table[(table.family == "secondary") & stated]
    decided = secondary[~secondary.stated.str.startswith("not resolved")]
    if len(secondary):
        lines.append(
            "- on final accuracy (the secondary family): "
            + "".join(f"{r.comparison} {interval(r)}, {r.stated}; " for r in decided.itertuples())
            + f"{len(secondary) - len(decided)} of {len(secondary)} not resolved"
        )
    for reason, rows in (
        ("no perturbed rerun of this run yet (`./run_all.sh --check-verdicts`)", table[table.stated == NO_RERUN]),
        (
            "the perturbed rerun did not reach the same verdict",
            table[~stated & (table.stated != NO_RERUN)],
        ),
    ):
        if len(rows):
            lines.append(
                f"- not claimed, because {reason}: {len(rows)} of {len(table)} ("
                + ", ".join(f"{r.comparison} ({r.summary})" for r in rows.itertuples())
                + ")"
            )
    return lines


def family_markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(
        {
            "family": table.family,
            "comparison": table.comparison,
            "also reported as": table.aliases.fillna(""),
            "seeds": table.seeds,
            "difference, points [95% CI, uncorrected]": [interval(r) for r in table.itertuples()],
            "p (Holm)": table.p_holm.map(lambda p: f"{p:.3g}"),
            f"p equivalent within {EQUIVALENCE_MARGIN * 100:g} (Holm)": table.p_equivalent_holm.map(
                lambda p: f"{p:.3g}"
            ),
            "verdict": table.verdict,
            "rerun": [
                f"{points(r.rerun_difference)} [{points(r.rerun_ci_low)}, {points(r.rerun_ci_high)}]: {r.rerun_verdict}"
                if "rerun_verdict" in table and isinstance(r.rerun_verdict, str)
                else "-"
                for r in table.itertuples()
            ],
            "stated": table.stated,
        }
    )
    return shown.to_markdown(index=False)


SEEDS_TO_SEE_A_FALL = 5  # fewer seeds give paired intervals too wide (up to +-32 points at 2) to see a fall
PAPER_GAAL_CIFAR10 = (0.2811, 0.2132)  # the paper's Table 1, GAAL's first two budgets on CIFAR-10


def curves(results: Path) -> pd.DataFrame:
    """The learning-curve check (``analysis.curve_check``) of Sec. 4.1's pool baselines, and of GAAL, whose labels
    after the first cycle are synthesised images, not pool images."""
    records = pd.read_csv(results / "4.1" / "records.csv")
    return an.curve_check(records[records.strategy.notna() | (records.method == "GAAL")], (*BASELINES, "GAAL"))


def curve_sentence(check: pd.DataFrame) -> str:
    """What the check can say: pool baselines with enough seeds to see a fall, the others with how wide their
    intervals are, and GAAL apart (more labels there are more GAN samples, not more real images)."""
    pool, gaal = check[check.method != "GAAL"], check[check.method == "GAAL"]
    falls = pool[pool.falls]
    if not falls.empty:
        return "**The learning curves fall**, by more than their paired 95% interval: " + "; ".join(
            f"{r.method} at cycle {r.cycle} {points(r.change)} [{points(r.ci_low)}, {points(r.ci_high)}]"
            for r in falls.itertuples()
        )
    seen, blind = pool[pool.seeds >= SEEDS_TO_SEE_A_FALL], pool[pool.seeds < SEEDS_TO_SEE_A_FALL]
    parts = []
    if len(seen):
        parts.append(
            f"The pool baselines run on {seen.seeds.min()}-{seen.seeds.max()} seeds ({', '.join(seen.method.unique())}) "
            "rise or hold from each cycle to the next: no drop is larger than its paired 95% interval (half-widths "
            f"up to {half_widths(seen)} points)."
        )
    if len(blind):
        parts.append(
            f"The other pool baselines ({', '.join(blind.method.unique())}) run on {blind.seeds.max()} seeds: their "
            f"intervals reach +-{half_widths(blind)} points, so the check could not see a fall smaller than that; "
            "their curves are previews."
        )
    if len(gaal):
        changes = ", ".join(f"{points(r.change)} at cycle {r.cycle}" for r in gaal.itertuples())
        paper_first, paper_second = PAPER_GAAL_CIFAR10
        parts.append(
            f"GAAL is not a pool method: after the first cycle its labels are GAN samples at the classifier's "
            "decision boundary, labelled by the oracle, and its real labelled set stays at the initial images, so "
            f"more labels there means a larger share of synthetic images in training. Its mean accuracy changes "
            f"{changes} ({gaal.seeds.max()} seeds): where it falls, those samples cost more than they teach, as in "
            f"the paper, whose GAAL falls from {paper_first:.3f} to {paper_second:.3f} on CIFAR-10 (Table 1)."
        )
    return " ".join(parts)


def half_widths(check: pd.DataFrame) -> str:
    return f"{((check.ci_high - check.ci_low) / 2).max() * 100:.1f}"


def seed_plan_table(table: pd.DataFrame, plan_file: Path) -> str | None:
    """The plan's predicted half-width beside the achieved one, per member (None without a plan)."""
    if not plan_file.exists():
        return None
    plan = pd.read_csv(plan_file)
    both = table.merge(
        plan[["runs_key", "summary", "pilot_seeds", "pilot_sd"]], on=["runs_key", "summary"], how="inner"
    )
    if both.empty:
        return None
    both["predicted_half_width"] = [half_width(sd, n) for sd, n in zip(both.pilot_sd, both.seeds)]  # at its seeds
    shown = pd.DataFrame(
        {
            "comparison": both.comparison,
            "summary": both.summary,
            "pilot seeds": both.pilot_seeds,
            "seeds": both.seeds,
            "predicted +-": (both.predicted_half_width * 100).round(2),
            "achieved +-": (both.half_width * 100).round(2),
            "achieved / predicted": (both.half_width / both.predicted_half_width).round(2),
        }
    )
    return shown.to_markdown(index=False)


def wall_time(results: Path) -> str | None:
    if not (results / "timings.csv").exists():
        return None
    return f"{an.run_wall_seconds(results) / 60:.1f} minutes"


def extra_seeds_text(config: dict) -> str:
    """The more seeds the seed plan gave some runs, as the run's configuration names them ("" where none)."""
    extra = config.get("extra_seeds") or []
    if not extra:
        return ""
    return " (the seed plan's more seeds: " + "; ".join(f"{run} also {list(seeds)}" for run, seeds in extra) + ")"


def claims_lines(results: Path) -> list[str]:
    """The claims ledger's counts and link, where the run has one (``paper_claims``)."""
    if not (results / paper_claims.LEDGER).exists():
        return []
    counts = paper_claims.summary_line(pd.read_csv(results / paper_claims.LEDGER), link=paper_claims.PAGE)
    return [counts, ""]


def page(results: Path, plan_file: Path) -> str:
    """RESULTS.md's text (figures written beside it by :func:`write`)."""
    table = pd.read_csv(results / FAMILY_TABLE)
    config = json.loads((results / "4.1" / "config.json").read_text())
    check = pd.read_csv(results / "curve_check.csv")
    parts = [
        f"# Results of the {results.name} run",
        "",
        f"Written by `python -m galot_lib.reporting.report` from the files beside it. Code `{config.get('code_version')}` "
        f"(commit {config.get('git_commit')}); seeds {config['seeds']}{extra_seeds_text(config)}; "
        + (f"wall time {wall_time(results)} (`timings.csv`)." if wall_time(results) else "no wall time recorded."),
        "",
        "## What it found",
        "",
        *findings(table),
        "",
        *claims_lines(results),
        "## The headline family",
        "",
        "Every comparison the profile fixed before the run, each counted once (a comparison another section reports "
        "on the same runs is listed as its alias), paired by seed. Two families, each Holm-corrected: the primary on "
        "average accuracy over the cycles, the secondary on final accuracy. A member is *better* or *worse* where "
        f"the corrected test of no difference rejects, *equivalent within {EQUIVALENCE_MARGIN * 100:g} point* where "
        "the corrected two one-sided tests do, and otherwise *not resolved* at its seeds. *Stated* is the verdict "
        "only where the perturbed rerun (`./run_all.sh --check-verdicts`: other float rounding), corrected the same "
        "way, reached it too.",
        "",
        "![the headline family](family.png)",
        "",
        family_markdown(table),
        "",
        "## Learning curves",
        "",
        "![learning curves](4.1/table1_curves.png)",
        "",
        curve_sentence(check) + " (`curve_check.csv`)",
    ]
    plan = seed_plan_table(table, plan_file)
    if plan is not None:
        parts += [
            "",
            "## Seed plan: predicted and achieved resolution",
            "",
            "Half-widths of the 95% intervals, in points: predicted from whole runs on pilot seeds no headline "
            f"reports (`{shown(plan_file)}`, `python -m galot_lib.reporting.seed_plan`), achieved by this run.",
            "",
            plan,
        ]
    if (results / "W" / "arms.csv").exists():
        arms = pd.read_csv(results / "W" / "arms.csv")
        cols = [
            "arm",
            "seeds",
            "average",
            "final",
            "kept_gain",
            "kept_label_correct",
            "heldout_gain",
            "images_rendered_per_run",
            "seconds_per_run",
        ]
        parts += [
            "",
            "## Notebook W: the arms",
            "",
            "Per arm over the headline seeds (`W/arms.csv`). `kept_gain`: the kept images' acquisition over the plain "
            "prompt's at the same count; for the selection arms it is high by construction (they keep the "
            "highest-scoring images on that very score), so it measures the selection, not a better prompt. "
            "`heldout_gain`: the moved prompt's gain on fresh noise seeds (per-image prompts: on their own noise).",
            "",
            arms[[c for c in cols if c in arms]].to_markdown(index=False, floatfmt=".4f"),
        ]
    zero_shot = results / "W" / "zero_shot.json"
    if zero_shot.exists():
        z = json.loads(zero_shot.read_text())
        parts += [
            "",
            "## What the generator knows",
            "",
            f"The text-to-image model ({z['t2i']}) as a zero-shot classifier of {z['test_images']:,} test "
            f"images, no labels: {z['accuracy']:.4f} [{z['ci_low']:.4f}, {z['ci_high']:.4f}] (`W/zero_shot.json`).",
        ]
    ledgers = sorted((results / "grid").glob("timing_process*.csv"))
    if ledgers:
        ledger = pd.concat(pd.read_csv(p) for p in ledgers).groupby("phase", sort=False).seconds.sum()
        parts += [
            "",
            "## Where the time went",
            "",
            f"The grid's processes, {ledger.sum() / 60:.1f} process-minutes (`grid/timing_process*.csv`): "
            + ", ".join(f"{phase} {s / ledger.sum():.0%}" for phase, s in ledger.items() if s > 0)
            + ".",
        ]
    return "\n".join(parts) + "\n"


def write(results: Path) -> Path:
    """The family table and plot, the curve check and RESULTS.md of a finished run; returns the page's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = Path(results)
    table = family_table(results)
    save_table(table, results / FAMILY_TABLE, index=False)
    fig = forest_plot(table)
    save_figure(fig, results / "family.png")
    plt.close(fig)
    save_table(curves(results), results / "curve_check.csv", index=False)
    paper_claims.write(results, run_settings(results))
    return write_text(results / PAGE, page(results, plan_path(results.name)))


def run_settings(results: Path) -> SimpleNamespace:
    """The settings the run was made with, as its Sec. 4.1 configuration saved them (not today's profile)."""
    return SimpleNamespace(**json.loads((Path(results) / "4.1" / "config.json").read_text()))
