"""The report's analysis, as tested functions: paired comparisons over seeds with confidence intervals and
a verdict in words, the held-out informativeness and label-correctness tables, and the claims each
section checks against the paper. Notebooks call these and only plot and save.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


def per_seed(df: pd.DataFrame, summary: str = "average", index: str = "method") -> pd.Series:
    """One number per (``index``, seed): test accuracy averaged over the cycles (the paper's Average column)
    or at the last cycle (``summary="final"``)."""
    if summary not in ("average", "final"):
        raise ValueError(f"summary must be 'average' or 'final', got {summary!r}")
    grouped = df.sort_values("cycle").groupby([index, "seed"]).accuracy
    return grouped.mean() if summary == "average" else grouped.last()


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the t interval over independent values (NaN bounds with fewer than two)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def verdict(low: float, high: float, ours: str = "GALOT") -> str:
    """In words: which side the interval excludes zero on, or that it does not."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not enough seeds to tell"
    if low > 0:
        return f"{ours} better"
    if high < 0:
        return f"{ours} worse"
    return "not distinguishable"


def paired_differences(df: pd.DataFrame, ours: str, comparators, summary: str = "average",
                       index: str = "method") -> pd.DataFrame:
    """``ours`` minus each comparator, paired by seed (the same seed shares the initial labels and query
    stream): the mean difference, its 95% t interval over seeds and a verdict. Seeds missing on either side
    are left out of that pair."""
    scores = per_seed(df, summary, index)
    rows = []
    for other in comparators:
        if other == ours or other not in scores.index.get_level_values(0):
            continue
        a, b = scores.loc[ours], scores.loc[other]
        seeds = a.index.intersection(b.index)
        diff = (a.loc[seeds] - b.loc[seeds]).to_numpy()
        mean, low, high = mean_ci(diff)
        rows.append(dict(comparison=f"{ours} - {other}", summary=summary, seeds=len(seeds), difference=mean,
                         ci_low=low, ci_high=high, verdict=verdict(low, high, ours)))
    return pd.DataFrame(rows)


def describe_differences(table: pd.DataFrame) -> str:
    """The paired differences as sentences for the report."""
    lines = []
    for r in table.itertuples():
        lines.append(f"- {r.comparison} ({r.summary} accuracy, {r.seeds} seeds): {r.difference * 100:+.1f} points, "
                     f"95% CI [{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]: **{r.verdict}**.")
    return "\n".join(lines)


def best_baselines(df: pd.DataFrame, baselines, k: int = 3, summary: str = "average") -> list[str]:
    """The ``k`` pool baselines with the highest mean accuracy over seeds (the strongest comparators)."""
    scores = per_seed(df[df.method.isin(baselines)], summary).groupby(level=0).mean()
    return list(scores.sort_values(ascending=False).index[:k])


# ----------------------------------------------------------------------------- held-out informativeness
def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The cycle records that carry a held-out measurement."""
    return df[df.get("heldout_n", pd.Series(dtype=float)).fillna(0) > 0]


def heldout_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (run, seed, cycle, class) of the held-out measurement, with the run's settings."""
    rows = []
    for r in records:
        for per_class in r.get("heldout_per_class") or []:
            base = {k: v for k, v in r.items() if not isinstance(v, list)}
            rows.append(dict(base, **{f"class_{k}" if k == "label" else k: v for k, v in per_class.items()}))
    return pd.DataFrame(rows)


def heldout_table(df: pd.DataFrame, by) -> pd.DataFrame:
    """Held-out gain of the optimised and of the random embedding over the plain prompt, and judged label
    correctness, pooled over the records of each group (cycle-level records; gains weighted by images).
    The standard error pools the per-cycle ones (independent seeds and cycles)."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, part in measured(df).groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        w = part.heldout_n / part.heldout_n.sum()
        row = dict(zip(by, key), images=int(part.heldout_n.sum()))
        for name in ("heldout_gain", "heldout_random_gain"):
            row[name] = float((w * part[name]).sum())
            row[f"{name}_se"] = float(np.sqrt((w**2 * part[f"{name}_se"] ** 2).sum()))
        for d in ("plain", "optimized", "random"):
            if f"label_correct_{d}" in part:
                row[f"label_correct_{d}"] = float((w * part[f"label_correct_{d}"]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(df: pd.DataFrame, by) -> pd.DataFrame:
    """PGD time per step, and held-out gain per second of PGD, for the computed cycles of each group."""
    by = [by] if isinstance(by, str) else list(by)
    part = measured(df)
    out = part.groupby(by, sort=False).agg(pgd_s=("pgd_s", "mean"), pgd_steps=("pgd_steps", "first"),
                                            gain=("heldout_gain", "mean")).reset_index()
    out["pgd_s_per_step"] = out.pgd_s / out.pgd_steps
    out["gain_per_pgd_s"] = out.gain / out.pgd_s
    if "grad_cosine_full" in part:
        fid = part.groupby(by, sort=False)[["grad_cosine_full", "grad_sign_agreement_full"]].mean().reset_index()
        out = out.merge(fid, on=by)
    return out


# ----------------------------------------------------------------------------- the paper's claims
def table1_summary(tables: dict[str, pd.DataFrame], paper: pd.DataFrame, strategies) -> pd.DataFrame:
    """Ours and the paper's Table 1, side by side: the best pool baseline, the GALOT rows and the
    Improvement row (GALOT minus the best baseline per column) averaged, and the columns GALOT wins."""
    rows = []
    for dataset, table in tables.items():
        best = table.loc[[s for s in strategies if s in table.index], "Average"]
        rows.append(dict(source=f"ours: {dataset}", best_baseline=best.idxmax(), best_baseline_avg=best.max(),
                         galot_basic_avg=table.loc["GALOT (basic)", "Average"], galot_avg=table.loc["GALOT", "Average"],
                         improvement_avg=table.loc["Improvement", "Average"],
                         galot_wins_columns=f"{(table.loc['Improvement'].drop('Average') > 0).sum()}/{len(table.columns) - 1}"))
    for dataset, part in paper.groupby("dataset", sort=False):
        part = part.set_index("method")
        base = part.loc[[s for s in strategies if s in part.index], "Average"]
        improvement = part.loc["Improvement"].drop(["dataset", "fully_supervised_accuracy", "Average"]).astype(float)
        rows.append(dict(source=f"paper: {dataset}", best_baseline=base.idxmax(), best_baseline_avg=base.max(),
                         galot_basic_avg=part.loc["GALOT (basic)", "Average"], galot_avg=part.loc["GALOT", "Average"],
                         improvement_avg=float(part.loc["Improvement", "Average"]),
                         galot_wins_columns=f"{(improvement > 0).sum()}/{len(improvement)}"))
    return pd.DataFrame(rows)


def figure3_claims(table: pd.DataFrame, full: float) -> pd.DataFrame:
    """Fig. 3's claims in numbers (``table``: mean accuracy per method and AL budget, plus Average)."""
    last = [c for c in table.columns if c != "Average"][-1]
    cycles = table.loc[["AL+GAL", "AL"]].drop(columns="Average")
    return pd.DataFrame([
        dict(claim="GAL-only accuracy at the last cycle", value=table.loc["GAL", last]),
        dict(claim="AL+GAL minus AL, averaged over cycles", value=table.loc["AL+GAL", "Average"] - table.loc["AL", "Average"]),
        dict(claim="cycles where AL+GAL beats AL", value=int((cycles.loc["AL+GAL"] > cycles.loc["AL"]).sum())),
        dict(claim="fully supervised minus AL+GAL at the last cycle", value=full - table.loc["AL+GAL", last]),
    ])


def transfer_claims(table: pd.DataFrame, baselines, galot_row: str, models) -> dict:
    """Sec. 4.3's claims: how many transfer networks beat both AL baselines, and the GALOT classifier."""
    best_base = table.loc[list(baselines), "Average"].max()
    return dict(models_above_both_AL_baselines=f"{sum(table.loc[m, 'Average'] > best_base for m in models)}/{len(models)}",
                models_above_galot_classifier=f"{sum(table.loc[m, 'Average'] > table.loc[galot_row, 'Average'] for m in models)}/{len(models)}")


def pseudo_label_accuracy(judged: pd.DataFrame, templates) -> pd.DataFrame:
    """Sec. 4.4: the share of images the judge assigns to their prompt's class, per template (rows) and eps."""
    acc = judged.groupby(["template", "eps"])[["correct", "total"]].sum()
    return (acc.correct / acc.total).unstack("eps").reindex(list(templates))


# ----------------------------------------------------------------------------- the README's headline
def headline(results: Path) -> list[str]:
    """The README's headline, line by line, from a finished run's tables (``results/<profile>/``): a test
    checks that the README holds these exact lines, so the two cannot drift apart."""
    results = Path(results)
    lines = []
    table1 = pd.read_csv(results / "4.1" / "table1_fashion_mnist.csv", index_col=0)
    records = pd.read_csv(results / "4.1" / "records.csv")
    seeds = records.groupby("method").seed.nunique()
    for method in ("GALOT", "GALOT template, eps 0", "GALOT (basic)"):
        lines.append(f"- {method}: mean accuracy over the cycles {table1.loc[method, 'Average']:.4f} "
                     f"({seeds[method]} seeds)")
    baselines = [m for m in table1.index if m not in ("GAAL", "Improvement", "GALOT", "GALOT template, eps 0",
                                                      "GALOT (basic)")]
    best = table1.loc[baselines, "Average"].sort_values(ascending=False)
    lines.append("- strongest pool baselines: " + ", ".join(f"{m} {v:.4f} ({seeds[m]} seeds)" for m, v in best.head(3).items()))
    paired = pd.read_csv(results / "4.1" / "paired_differences.csv")
    figure3 = pd.read_csv(results / "4.2" / "paired_differences.csv")
    for r in pd.concat([paired, figure3]).itertuples():
        lines.append(f"- {r.comparison}, {r.summary} accuracy: {r.difference * 100:+.1f} points "
                     f"[{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}], {r.verdict}")
    per_cycle = pd.read_csv(results / "4.1" / "heldout_gain.csv").rename(columns={"images": "heldout_n"})
    pooled = heldout_table(per_cycle, "dataset").iloc[0]  # Table 1's data set, its cycles pooled
    lines.append(f"- held-out acquisition gain of GALOT's embeddings over the plain prompt: "
                 f"{pooled.heldout_gain:+.4f} (random direction {pooled.heldout_random_gain:+.4f}); "
                 f"judged labels correct: plain {pooled.label_correct_plain:.3f}, optimised "
                 f"{pooled.label_correct_optimized:.3f}, random {pooled.label_correct_random:.3f}")
    labels = pd.read_csv(results / "4.5" / "label_objectives_paired.csv")
    for r in labels.itertuples():
        lines.append(f"- {r.comparison}, {r.summary} accuracy: {r.difference * 100:+.1f} points "
                     f"[{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}], {r.verdict}")
    lines.append(f"- wall time of the whole run: {run_wall_seconds(results) / 60:.1f} minutes on 2 CPU cores")
    return lines


def run_wall_seconds(results: Path) -> float:
    """First start to last finish in ``timings.csv`` (its notebooks may run side by side after the grid)."""
    timings = pd.read_csv(Path(results) / "timings.csv", parse_dates=["started_at", "finished_at"])
    return (timings.finished_at.max() - timings.started_at.min()).total_seconds()
