"""Tidy tables, paper-style tables and figures, and the paper's own numbers beside ours.

Records (one dict per cycle and run) become a DataFrame; paper-style tables pivot them to one
row per method and one column per label count, averaged over seeds, with an Average column,
as the paper's tables are laid out. The paper's numbers live in ``results/paper/*.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.figures import image_grid  # noqa: F401 (the notebooks draw their image grids through here)
from ..core.io import save_figure, save_table, write_json  # noqa: F401 (save_figure: the notebooks save through here)
from ..core.paths import REPO, results_dir, results_root, shown_source  # noqa: F401 (the notebooks use these here)
from ..core.provenance import provenance
from ..experiments.profiles import BASELINES

PAPER_DIR = REPO / "results" / "paper"


def frame(records: list[dict]) -> pd.DataFrame:
    """Records as a table, one row per cycle; per-class detail lists (held-out) stay out (see analysis)."""
    return pd.DataFrame.from_records([{k: v for k, v in r.items() if not isinstance(v, list)} for r in records])


def accuracy_table(
    df: pd.DataFrame, index: str = "method", column: str = "n_labeled", order=None, value: str = "accuracy"
) -> pd.DataFrame:
    """Mean over seeds, one row per ``index`` value, one column per ``column`` value, plus Average."""
    table = df.pivot_table(index=index, columns=column, values=value, aggfunc="mean")
    table["Average"] = table.mean(axis=1)
    if order is not None:
        table = table.reindex([o for o in order if o in table.index])
    table.columns = [str(c) for c in table.columns]
    return table


def sem_table(
    df: pd.DataFrame, index: str = "method", column: str = "n_labeled", order=None, value: str = "accuracy"
) -> pd.DataFrame:
    """Standard error of the mean over seeds (the paper's uncertainty; NaN with one seed).

    The Average column's SEM is over the seeds' own averages."""
    sem = df.pivot_table(index=index, columns=column, values=value, aggfunc=lambda v: v.std(ddof=1) / np.sqrt(len(v)))
    per_seed_avg = df.groupby([index, "seed"])[value].mean().groupby(level=0)
    sem["Average"] = per_seed_avg.std(ddof=1) / np.sqrt(per_seed_avg.size())
    if order is not None:
        sem = sem.reindex([o for o in order if o in sem.index])
    sem.columns = [str(c) for c in sem.columns]
    return sem


def mean_with_sem(mean: pd.DataFrame, sem: pd.DataFrame) -> pd.DataFrame:
    """A table of "mean ± SEM" strings (the paper's layout for Table 3 and Figs. 5-6)."""
    return mean.round(4).astype(str) + " ± " + sem.round(4).astype(str)


def study_table(df: pd.DataFrame, study: str, out: Path, with_sem: bool = False) -> pd.DataFrame:
    """One Sec. 4.5 study as the paper lays it out (settings in run order), saved as ``<study>.csv`` (and
    ``<study>_sem.csv``); with ``with_sem``, shown as "mean ± SEM"."""
    part = df[df.study == study]
    order = list(dict.fromkeys(part.setting))
    mean = accuracy_table(part, index="setting", order=order)
    save_table(mean, Path(out) / f"{study}.csv")
    if not with_sem:
        return mean
    sem = sem_table(part, index="setting", order=order)
    save_table(sem, Path(out) / f"{study}_sem.csv")
    return mean_with_sem(mean, sem)


def improvement_row(table: pd.DataFrame, ours: str, baselines) -> pd.Series:
    """Ours minus the best baseline in each column (the paper's Improvement row; negative when a
    baseline wins)."""
    present = [b for b in baselines if b in table.index]
    return (table.loc[ours] - table.loc[present].max()).rename("Improvement")


def with_improvement(table: pd.DataFrame, ours: str, baselines) -> pd.DataFrame:
    return pd.concat([table, improvement_row(table, ours, baselines).to_frame().T])


ALL_SEEDS = "Average, all seeds"  # Table 1's column beside the shared-seed table: each row over every seed it ran


def shared_seeds(df: pd.DataFrame, rows, index: str = "method") -> list:
    """The seeds every one of ``rows`` (values of ``index`` present in ``df``) was run on."""
    present = [r for r in rows if r in set(df[index])]
    if not present:
        return []
    return sorted(set.intersection(*(set(df.loc[df[index] == r, "seed"]) for r in present)))


def table1(df: pd.DataFrame, order, ours: str, baselines) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 as a reader compares it, and its SEM: every row over the seeds *all* rows share (rows that share their
    initial labels then start from the same cycle-0 accuracy), the Improvement row (``ours`` minus the best baseline
    per column), and beside them each row's mean over every seed it ran (``ALL_SEEDS``; some rows run on more seeds
    than others) and that number of seeds (``seeds``)."""
    seeds = shared_seeds(df, order)
    if not seeds:
        raise ValueError(f"the rows of Table 1 share no seed: {df.groupby('method').seed.unique().to_dict()}")
    shared = df[df.seed.isin(seeds)]
    table = with_improvement(accuracy_table(shared, order=order), ours, baselines)
    table[ALL_SEEDS] = with_improvement(accuracy_table(df, order=order), ours, baselines)["Average"]
    table["seeds"] = df.groupby("method").seed.nunique().astype("Int64")
    return table, sem_table(shared, order=order)


def paper_table(name: str) -> pd.DataFrame:
    """One of the paper's tables, e.g. ``paper_table("table1_al_comparison")``."""
    path = PAPER_DIR / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; the paper's tables are {sorted(p.stem for p in PAPER_DIR.glob('*.csv'))}"
        )
    return pd.read_csv(path)


def save_json(obj, path: Path) -> Path:
    """A configuration beside the results (written atomically, indented for reading)."""
    return write_json(path, obj, indent=2)


def code_versions(results: Path) -> set[str]:
    """The code versions a finished run's records and configurations carry ("none" for any that carry none:
    made before records named their code)."""
    found = set()
    for path in Path(results).glob("*/records.csv"):
        table = pd.read_csv(path, usecols=lambda c: c == "code_version")
        found |= set(table.code_version.fillna("none")) if "code_version" in table else {"none"}
    for path in Path(results).glob("*/config.json"):
        found.add(json.loads(path.read_text()).get("code_version", "none"))
    return found


def save_config(profile, folder: Path) -> Path:
    """A section's ``config.json``: the profile it ran with and the code that ran it (``core.provenance``)."""
    return save_json(dict(profile.as_dict(), **provenance()), Path(folder) / "config.json")


# One colour per meaning, the same in every panel and every figure: GALOT's rows warm, the pool strategies from a
# fixed list, Fig. 3's AL the MarginSampling it is and AL+GAL the GALOT it is; a name met nowhere here takes the next
# free colour the first time it is drawn and keeps it for the rest of the process (both panels of a figure included).
_BASELINE_COLOURS = (
    "#1f77b4",
    "#aec7e8",
    "#2ca02c",
    "#98df8a",
    "#9467bd",
    "#c5b0d5",
    "#17becf",
    "#9edae5",
    "#bcbd22",
    "#dbdb8d",
    "#e377c2",
)
COLOURS = {
    **dict(
        zip(
            BASELINES,
            _BASELINE_COLOURS,
        )
    ),
    "GAAL": "#7f7f7f",
    "GALOT (basic)": "#8c564b",
    "GALOT template, eps 0": "#ff7f0e",
    "GALOT": "#d62728",
    "AL": "#2ca02c",
    "GAL": "#9467bd",
    "AL+GAL": "#d62728",
}
_SPARE_COLOURS = (
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#6baed6",
    "#fd8d3c",
    "#74c476",
    "#9e9ac8",
    "#969696",
)
_drawn: dict[str, str] = {}
# Sec. 4.5's held-out figures: the same direction in the same colour on both panels.
DIRECTION_COLOURS = {"plain prompt": "#7f7f7f", "gradient (PGD)": "#d62728", "random direction": "#1f77b4"}


def colours(names) -> dict[str, str]:
    """The colour of each name (:data:`COLOURS`, else one of the spare ones, fixed once drawn)."""
    out = {}
    for name in names:
        key = str(name)
        if key in COLOURS:
            out[name] = COLOURS[key]
            continue
        if key not in _drawn:
            used = set(_drawn.values())
            free = [c for c in _SPARE_COLOURS if c not in used]
            _drawn[key] = free[0] if free else _SPARE_COLOURS[len(_drawn) % len(_SPARE_COLOURS)]
        out[name] = _drawn[key]
    return out


def learning_curves(
    df: pd.DataFrame,
    ax,
    hue: str = "method",
    x: str = "n_labeled",
    y: str = "accuracy",
    order=None,
    title: str | None = None,
):
    """Mean accuracy against labels with a band over seeds (seaborn's SE band); each line in its name's colour
    (:func:`colours`: the same method in the same colour in every panel)."""
    import seaborn as sns

    present = [h for h in (order or pd.unique(df[hue])) if h in set(df[hue])]
    sns.lineplot(
        data=df, x=x, y=y, hue=hue, hue_order=present, marker="o", errorbar="se", ax=ax, palette=colours(present)
    )
    # GALOT's lines (GALOT, GAL, AL+GAL; not GAAL) drawn bold, the baselines thin
    data_lines = [line for line in ax.get_lines() if line.get_label().startswith("_child")]
    for name, line in zip(present, data_lines):
        line.set_linewidth(2.8 if "GAL" in str(name) else 1.1)
    ax.set_xlabel("labelled images" if x == "n_labeled" else x)
    ax.set_ylabel("test accuracy")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)


def paper_long(table: pd.DataFrame, id_cols, value_name: str = "accuracy") -> pd.DataFrame:
    """A paper table with label-count columns ("1000", "2000", ...) in long form."""
    label_cols = [c for c in table.columns if c.isdigit()]
    long = table.melt(id_vars=id_cols, value_vars=label_cols, var_name="n_labeled", value_name=value_name)
    long["n_labeled"] = long["n_labeled"].astype(int)
    long[value_name] = pd.to_numeric(long[value_name])
    return long


def heldout_figure(table: pd.DataFrame, x: str, title: str, xlabel: str | None = None):
    """Held-out gain over the plain prompt (optimised vs random direction, +- 1.96 SE) beside judged label
    correctness (plain, optimised, random), against ``x``: the figure behind GALOT's eps and objective choices."""
    import matplotlib.pyplot as plt

    fig, (gain_ax, label_ax) = plt.subplots(1, 2, figsize=(11, 4))
    positions = np.arange(len(table))
    for offset, (name, label) in zip(
        (-0.1, 0.1), (("heldout_gain", "gradient (PGD)"), ("heldout_random_gain", "random direction"))
    ):
        gain_ax.errorbar(
            positions + offset,
            table[name],
            yerr=1.96 * table[f"{name}_se"],
            marker="o",
            capsize=3,
            ls="-" if offset < 0 else "--",
            label=label,
            color=DIRECTION_COLOURS[label],
        )
    gain_ax.axhline(0, color="k", lw=0.8)
    gain_ax.set_ylabel("held-out acquisition gain over c_y")
    for name, label in (
        ("label_correct_plain", "plain prompt"),
        ("label_correct_optimized", "gradient (PGD)"),
        ("label_correct_random", "random direction"),
    ):
        if name in table:
            label_ax.plot(positions, table[name], marker="o", label=label, color=DIRECTION_COLOURS[label])
    label_ax.set_ylabel("images the judge sees as their class")
    for ax in (gain_ax, label_ax):
        ax.set_xticks(positions, table[x].astype(str), rotation=20, ha="right")
        ax.set_xlabel(xlabel or x)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
