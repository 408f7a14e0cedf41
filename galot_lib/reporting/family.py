"""The headline as one family of comparisons fixed in advance, each counted once, corrected as a family.

The sections compare runs that other sections compare too: Fig. 3's "AL+GAL - AL" is Sec. 4.1's "GALOT -
MarginSampling" (the same runs), notebook W's "GALOT - eps 0" is Sec. 4.1's "GALOT - GALOT template, eps 0", and
Sec. 4.5's label study is the first cycles of notebook W's runs. Every paired comparison carries the key of the two
runs it compares (``runs_key``: what decides their results, not their names, seeds or lengths); comparisons with the
same key and summary are one member of the family, reported under the name of the section that runs them longest
(then the first section), the others listed as its aliases.

Two families, each fixed before the run: the primary one on average accuracy over the cycles (the paper's Average
column), the secondary one on final accuracy. Within each, Holm's correction holds the chance of any false claim
below 5%, for "different" (the paired t test) and for "equivalent within EQUIVALENCE_MARGIN" (two one-sided tests)
alike. Each member then reads one way: better / worse (and, where the equivalence test also passes, by less than the
margin), equivalent within the margin, or not resolved at this many seeds (with the interval's half-width: the size
these seeds resolve). A verdict is stated only where the perturbed rerun (``verdict_check``), corrected the same way,
reaches it too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..experiments.profiles import run_seeds
from ..experiments.sections import run_keys
from . import analysis as an
from .analysis import CONFIDENCE, EQUIVALENCE_MARGIN, holm

NO_RERUN = "not claimed: no perturbed rerun of this run"  # the stated verdict before the verdict check

# (section, its table of paired comparisons, the profile field of its seeds; None: the seeds both runs compared have,
# Table 1's and Fig. 3's runs having seeds of their own, Profile.seeds_of), in the order that names a member
SECTION_TABLES = (
    ("4.1", "paired_differences.csv", None),
    ("4.2", "paired_differences.csv", None),
    ("W", "paired_differences.csv", "seeds"),
    ("4.5", "label_objectives_paired.csv", "ablation_seeds"),
)
SEEDS_FIELD = {section: field for section, _, field in SECTION_TABLES}
FAMILIES = {"average": "primary", "final": "secondary"}  # summary -> family
VERDICT_CHECK = "verdict_check.csv"  # beside a run's sections: its comparisons rerun under other float rounding
FAMILY_TABLE = "family.csv"
ALPHA = 1 - CONFIDENCE


def section_plans(profile) -> dict[str, tuple[str, list[tuple[str, list[str]]]]]:
    """Each section's comparisons fixed in advance: section -> (the records' column that names a run, its plan)."""
    return {
        "4.1": ("method", an.table1_comparisons(profile)),
        "4.2": ("method", an.FIGURE3_COMPARISONS),
        "4.5": ("setting", an.label_comparisons(profile)),
        "W": ("arm", an.payoff_comparisons(profile)),
    }


def computed_comparisons(profile, records: dict[str, list[dict]]) -> pd.DataFrame:
    """Each section's comparisons of ``records`` (``sections.headline_records``), as the notebooks compute them
    (with the runs they compare)."""
    return pd.concat(
        [
            an.compare(pd.DataFrame(records[s]), plan, index=index, runs=run_keys(profile, s)).assign(section=s)
            for s, (index, plan) in section_plans(profile).items()
        ],
        ignore_index=True,
    )


def planned_members(profile) -> int:
    """How many members each family of the profile's run will have, before any run: its sections' planned
    comparisons, those of the same two runs counted once (as :func:`members` counts them)."""
    pairs = set()
    for section, (_, plan) in section_plans(profile).items():
        runs = run_keys(profile, section)
        pairs |= {(runs[ours][0], runs[o][0]) for ours, others in plan for o in others if ours in runs and o in runs}
    return len(pairs)


def planned_seeds(config: dict, section: str, ours: str, other: str) -> int:
    """The seeds a section's comparison of ``ours`` with ``other`` pairs on as the profile (``config``: its fields as
    a dict, e.g. a section's config.json) plans them."""
    field = SEEDS_FIELD[section]
    if field is not None:
        return len(config[field])
    extra = config.get("extra_seeds", ())
    return len(set(run_seeds(config["seeds"], extra, ours)) & set(run_seeds(config["seeds"], extra, other)))


def section_comparisons(results: Path) -> pd.DataFrame:
    """Every paired comparison a finished run's sections wrote, on every seed its section planned (a pair with
    fewer is no headline comparison), with its section; Sec. 4.1's on its first data set."""
    tables = []
    for section, name, _ in SECTION_TABLES:
        path = Path(results) / section / name
        if not path.exists():
            if section == "4.1":
                raise FileNotFoundError(f"{path}: the headline needs at least Sec. 4.1's comparisons")
            continue  # a run of some sections only (./run_all.sh --only)
        config = json.loads((Path(results) / section / "config.json").read_text())
        table = pd.read_csv(path)
        if "dataset" in table:
            table = table[table.dataset == config["table1_datasets"][0]].drop(columns="dataset")
        planned = [planned_seeds(config, section, r.ours, r.other) for r in table.itertuples()]
        tables.append(table[table.seeds == planned].assign(section=section))
    return pd.concat(tables, ignore_index=True)


def members(comparisons: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct comparison and summary: the one run longest (then of the first section), with
    ``aliases`` naming the others ("section: comparison"; the same runs, perhaps fewer cycles)."""
    order = {section: i for i, (section, _, _) in enumerate(SECTION_TABLES)}
    ranked = comparisons.assign(_order=comparisons.section.map(order)).sort_values(
        ["cycles", "_order"], ascending=[False, True], kind="stable"
    )
    rows = []
    for _, group in ranked.groupby(["runs_key", "summary"], sort=False):
        first = group.iloc[0]
        others = [
            f"{r.section}: {r.comparison}" + ("" if r.cycles == first.cycles else f" ({r.cycles} cycles)")
            for r in group.iloc[1:].itertuples()
        ]
        rows.append(dict(first.drop("_order"), aliases="; ".join(others)))
    out = pd.DataFrame(rows)
    out["family"] = out.summary.map(FAMILIES)
    return out.sort_values("family", kind="stable").reset_index(drop=True)


def verdict_in_family(row, margin: float = EQUIVALENCE_MARGIN, alpha: float = ALPHA) -> str:
    """A member's verdict under the family's correction."""
    if not np.isfinite(row.difference) or row.seeds < 2:
        return "not enough seeds to tell"
    equivalent = row.p_equivalent_holm < alpha
    if row.p_holm < alpha:
        side = "better" if row.difference > 0 else "worse"
        return f"{row.ours} {side}" + (f", by less than {margin * 100:g} point" if equivalent else "")
    if equivalent:
        return f"equivalent within {margin * 100:g} point"
    return f"not resolved at {row.seeds} seeds"


def corrected(table: pd.DataFrame) -> pd.DataFrame:
    """Holm-adjusted p-values within each family, and each member's verdict."""
    out = table.copy()
    for family, part in out.groupby("family"):
        out.loc[part.index, "p_holm"] = holm(part.p_value)
        out.loc[part.index, "p_equivalent_holm"] = holm(part.p_equivalent)
    out["verdict"] = [verdict_in_family(r) for r in out.itertuples()]
    return out


def family_table(results: Path) -> pd.DataFrame:
    """The family of a finished run (``results/<profile>/``): each member with its aliases, difference and 95%
    interval, Holm-adjusted p-values, its verdict, and, where ``verdict_check.csv`` exists, the rerun's difference
    and verdict (corrected the same way) and what may be stated."""
    table = corrected(members(section_comparisons(results)))
    check = Path(results) / VERDICT_CHECK
    if not check.exists():
        table["stated"] = NO_RERUN
        return table
    rerun = corrected(members(pd.read_csv(check)))
    keep = ["runs_key", "summary", "difference", "ci_low", "ci_high", "verdict"]
    table = table.merge(
        rerun[keep].add_prefix("rerun_"),
        how="left",
        left_on=["runs_key", "summary"],
        right_on=["rerun_runs_key", "rerun_summary"],
    ).drop(columns=["rerun_runs_key", "rerun_summary"])
    table["held"] = table.verdict == table.rerun_verdict
    table["stated"] = [
        r.verdict if r.held else f"not claimed: {r.verdict} here, {r.rerun_verdict} in the rerun"
        for r in table.itertuples()
    ]
    return table


def interval(difference: float, low: float, high: float) -> str:
    return f"{difference * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"


STATED_COLOURS = {  # the forest plot's colour for each kind of stated verdict
    "better": "#1a7f37",
    "worse": "#b42318",
    "equivalent": "#1f5fbf",
    "not resolved": "#8a8a8a",
    "not claimed": "#d4a017",
}


def stated_kind(stated: str) -> str:
    """Which of STATED_COLOURS' kinds a stated verdict is. "not claimed: better here, not resolved in the rerun" is
    not claimed, whatever verdicts it quotes: that prefix is read first; a side is read from the verdict's end, since
    a member's name may hold commas ("GALOT template, eps 0 better")."""
    for prefix in ("not claimed", "equivalent"):
        if stated.startswith(prefix):
            return prefix
    side = re.search(r" (better|worse)(, by less than [^,]*)?$", stated)
    return side.group(1) if side else "not resolved"


def forest_plot(table: pd.DataFrame, axes=None):
    """Each member's difference with its 95% interval, in points, the equivalence margin shaded, the stated verdict
    as colour; one panel per family. Returns the figure."""
    import matplotlib.pyplot as plt

    families = [f for f in ("primary", "secondary") if f in set(table.family)]
    if axes is None:
        height = 0.32 * len(table) / max(len(families), 1) + 1.2
        fig, axes = plt.subplots(1, len(families), figsize=(6.5 * len(families), height), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, family in zip(axes, families):
        part = table[table.family == family].reset_index(drop=True)
        y = np.arange(len(part))[::-1]
        ax.axvspan(-EQUIVALENCE_MARGIN * 100, EQUIVALENCE_MARGIN * 100, color="#dde8f7", zorder=0)
        ax.axvline(0, color="#444", lw=0.8)
        for yi, r in zip(y, part.itertuples()):
            c = STATED_COLOURS[stated_kind(r.stated)]
            ax.plot([r.ci_low * 100, r.ci_high * 100], [yi, yi], color=c, lw=2)
            ax.plot(r.difference * 100, yi, "o", color=c)
        ax.set_yticks(y, part.comparison)
        ax.set(
            xlabel="difference in accuracy, points (95% interval)",
            title=f"{family}: {next(iter(part.summary))} accuracy",
        )
    for key, c in STATED_COLOURS.items():
        axes[-1].plot([], [], "o", color=c, label=key)
    axes[-1].legend(fontsize=8, loc="lower right")
    fig = axes[0].figure
    fig.tight_layout()
    return fig
