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
# The smallest difference in accuracy that matters, fixed before any run: a difference whose 90% interval lies
# inside +-EQUIVALENCE_MARGIN (two one-sided tests at 5%) is "equivalent within 1 point".
EQUIVALENCE_MARGIN = 0.01


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


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound near 0 and 1, unlike the normal one)."""
    p = successes / n
    centre, half = p + z * z / (2 * n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def with_wilson_interval(record: dict) -> dict:
    """A classifier's record (``correct`` of ``test_images``) with the 95% Wilson interval of its accuracy."""
    low, high = wilson_interval(record["correct"], record["test_images"])
    return dict(record, ci_low=low, ci_high=high)


def verdict(low: float, high: float, ours: str = "GALOT") -> str:
    """In words: which side the interval excludes zero on, or that it does not."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not enough seeds to tell"
    if low > 0:
        return f"{ours} better"
    if high < 0:
        return f"{ours} worse"
    return "not distinguishable"


def paired_test(diff, margin: float = EQUIVALENCE_MARGIN, confidence: float = CONFIDENCE) -> dict:
    """Everything one paired comparison states, from its per-seed differences: the mean, its ``confidence`` t
    interval and half-width, the spread, the two-sided p of "no difference" and the two-one-sided-tests p of
    "|difference| >= margin" (small p: equivalent within the margin). NaN where fewer than two seeds."""
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    mean, low, high = mean_ci(diff, confidence)
    row = dict(
        seeds=n,
        difference=mean,
        ci_low=low,
        ci_high=high,
        sd=np.nan,
        half_width=np.nan,
        p_value=np.nan,
        p_equivalent=np.nan,
    )
    if n < 2:
        return row
    sd = float(diff.std(ddof=1))
    se = sd / math.sqrt(n)
    row.update(sd=sd, half_width=(high - low) / 2)
    if se == 0:  # every seed the same difference
        row.update(p_value=0.0 if mean != 0 else 1.0, p_equivalent=0.0 if abs(mean) < margin else 1.0)
        return row
    row["p_value"] = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    below = stats.t.sf((mean + margin) / se, n - 1)  # H0: difference <= -margin
    above = stats.t.cdf((mean - margin) / se, n - 1)  # H0: difference >= +margin
    row["p_equivalent"] = float(max(below, above))
    return row


def half_width(sd: float, seeds: int) -> float:
    """The half-width of a 95% t interval of a mean over ``seeds`` paired seeds spread by ``sd``."""
    return float(stats.t.ppf(0.975, seeds - 1) * sd / math.sqrt(seeds)) if seeds > 1 else math.inf


def sd_of_interval(low: float, high: float, seeds: int) -> float:
    """The spread of the per-seed differences behind a 95% t interval over ``seeds`` paired seeds (its inverse)."""
    return (high - low) / 2 * math.sqrt(seeds) / stats.t.ppf(0.975, seeds - 1)


def seeds_for(sd: float, target: float = EQUIVALENCE_MARGIN, most: int = 100) -> int:
    """The fewest paired seeds whose 95% interval is at most +-``target`` wide (the seed plan's rule: the margin the
    study treats as mattering; ``most`` + 1: more than ``most``)."""
    return next((n for n in range(2, most + 1) if half_width(sd, n) <= target), most + 1)


def seeds_for_equivalence(difference: float, sd: float, tests: int, most: int = 100) -> int:
    """The fewest paired seeds at which two one-sided tests would show equivalence within ``EQUIVALENCE_MARGIN`` at
    Holm's strictest step over ``tests`` comparisons, if the true difference and spread were ``difference`` and
    ``sd``: |d| + t(1 - alpha / tests, n - 1) sd / sqrt(n) <= margin. A difference at or beyond the margin: never
    (``most`` + 1). A claim of "no effect" (the paper's central claim at a difference near zero) is resolved only by
    that test."""
    if abs(difference) >= EQUIVALENCE_MARGIN:
        return most + 1
    level = 1 - (1 - CONFIDENCE) / max(tests, 1)
    fits = (
        n
        for n in range(2, most + 1)
        if abs(difference) + stats.t.ppf(level, n - 1) * sd / math.sqrt(n) <= EQUIVALENCE_MARGIN
    )
    return next(fits, most + 1)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family's p-values (NaN counts as 1): reject where the adjusted p < alpha,
    and the family's chance of any false rejection stays below alpha, whatever the comparisons' dependence."""
    p = np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]).clip(max=1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def paired_differences(
    df: pd.DataFrame, ours: str, comparators, summary: str = "average", index: str = "method"
) -> pd.DataFrame:
    """``ours`` minus each comparator, paired by seed (the same seed shares the initial labels and query
    stream): the mean difference, its 95% t interval over seeds, the tests of :func:`paired_test`, and the
    uncorrected verdict (a family's corrected one: ``family``). Seeds missing on either side are left out of
    that pair."""
    scores = per_seed(df, summary, index)
    rows = []
    for other in comparators:
        if other == ours or other not in scores.index.get_level_values(0):
            continue
        a, b = scores.loc[ours], scores.loc[other]
        seeds = a.index.intersection(b.index)
        test = paired_test((a.loc[seeds] - b.loc[seeds]).to_numpy())
        rows.append(
            dict(
                comparison=f"{ours} - {other}",
                ours=ours,
                other=other,
                summary=summary,
                **test,
                verdict=verdict(test["ci_low"], test["ci_high"], ours),
            )
        )
    return pd.DataFrame(rows)


def describe_differences(table: pd.DataFrame) -> str:
    """The paired differences as sentences for the report."""
    lines = []
    for r in table.itertuples():
        lines.append(
            f"- {r.comparison} ({r.summary} accuracy, {r.seeds} seeds): {r.difference * 100:+.1f} points, "
            f"95% CI [{r.ci_low * 100:+.1f}, {r.ci_high * 100:+.1f}]: **{r.verdict}**."
        )
    return "\n".join(lines)


def compare(
    df: pd.DataFrame, comparisons, index: str = "method", summaries=("average", "final"), runs: dict | None = None
) -> pd.DataFrame:
    """Every (ours, comparators) pair of a comparison plan, paired by seed, for each summary. ``runs`` (name ->
    (key, cycles), ``sections.run_keys``) adds what the two sides' runs are (``runs_key``) and over how many cycles,
    by which ``family`` counts each comparison once."""
    tables = [
        paired_differences(df, ours, others, summary, index) for summary in summaries for ours, others in comparisons
    ]
    out = pd.concat(tables, ignore_index=True)
    if runs is not None and len(out):
        out["runs_key"] = [f"{runs[a][0]}|{runs[b][0]}" for a, b in zip(out.ours, out.other)]
        out["cycles"] = [min(runs[a][1], runs[b][1]) for a, b in zip(out.ours, out.other)]
    return out


# The comparisons the report makes, fixed before any run from the profile alone (never picked by this run's
# means): each returns [(ours, [comparators])].
def table1_comparisons(profile) -> list[tuple[str, list[str]]]:
    """Sec. 4.1: the template's step, the optimisation's step, and GALOT against the pool baselines the profile
    names in advance (``headline_baselines``, run on every seed)."""
    return [
        ("GALOT template, eps 0", ["GALOT (basic)"]),
        ("GALOT", ["GALOT template, eps 0", *profile.headline_baselines]),
    ]


FIGURE3_COMPARISONS = [("AL+GAL", ["AL", "GAL"])]  # Sec. 4.2


def label_comparisons(profile) -> list[tuple[str, list[str]]]:
    """Sec. 4.5's label-aware study: each option against the paper's objective (the first option)."""
    paper = profile.label_options[0][0]
    return [(name, [paper]) for name, _ in profile.label_options[1:]]


# Notebook W ("when does optimising the prompt pay?"): the optimisation without and with the filter, the filter
# at eps 0 and on optimised images, selection against PGD at equal kept images, per-image against shared c*.
PAYOFF_COMPARISONS = [
    ("GALOT", ["eps 0"]),
    ("GALOT + filter", ["eps 0 + filter", "GALOT"]),
    ("eps 0 + filter", ["eps 0"]),
    ("selection m=4", ["GALOT", "eps 0"]),
    ("selection m=4 + filter", ["GALOT + filter", "eps 0 + filter"]),
    ("per-image + filter", ["GALOT + filter"]),
]
LABEL_TOLERANCE = 0.02  # a label-preserving arm's kept images are judged right at most this much less than eps 0's


def payoff_comparisons(profile) -> list[tuple[str, list[str]]]:
    """PAYOFF_COMPARISONS among the profile's arms, and its default arm against the paper's method (GALOT) when they
    differ (and the default is among the arms)."""
    extra = [] if profile.default_arm in ("GALOT",) else [(profile.default_arm, ["GALOT"])]
    arms = set(profile.payoff_arms)
    planned = [
        (ours, [o for o in others if o in arms]) for ours, others in [*PAYOFF_COMPARISONS, *extra] if ours in arms
    ]
    unique = []  # the default's comparison may already be planned
    for ours, others in planned:
        others = [o for o in others if (ours, o) not in {(u, x) for u, xs in unique for x in xs}]
        if others:
            unique.append((ours, others))
    return unique


def arm_table(df: pd.DataFrame, index: str = "arm") -> pd.DataFrame:
    """Per arm, over its runs: accuracy (average over cycles and final, mean over seeds), what its kept images add
    beside the plain prompt's (acquisition gain and judged label correctness; cycles with a classifier), the
    held-out gain of the moved prompt with its random-direction control (arms that move it), and what a run of the
    arm costs on its own: PGD, filter and selection seconds as measured, and its images at the rendering speed
    measured over every render of ``df`` (arms share rendered images, so their own timers undercount)."""
    renders = df[df.rendered_now.fillna(0) > 0] if "rendered_now" in df else df[:0]
    per_image = renders.generation_s.sum() / renders.rendered_now.sum() if len(renders) else np.nan
    rows = []
    for arm, part in df.groupby(index, sort=False):
        kept = part[part.kept_gain.notna()] if "kept_gain" in part else part[:0]
        heldout = measured(part)
        w = heldout.heldout_n / heldout.heldout_n.sum() if len(heldout) else None
        runs = part.groupby("seed")
        seconds = {
            name: runs[name].sum().mean() if name in part else 0.0
            for name in ("pgd_s", "filter_s", "selection_s", "rendered")
        }
        rows.append(
            {
                index: arm,
                "seeds": part.seed.nunique(),
                "average": per_seed(part, "average", index).mean(),
                "final": per_seed(part, "final", index).mean(),
                "kept_gain": kept.kept_gain.mean() if len(kept) else np.nan,
                "kept_label_correct": kept.kept_label_correct.mean() if len(kept) else np.nan,
                "plain_label_correct": kept.plain_label_correct.mean() if len(kept) else np.nan,
                "heldout_gain": float((w * heldout.heldout_gain).sum()) if w is not None else np.nan,
                "heldout_random_gain": float((w * heldout.heldout_random_gain).sum()) if w is not None else np.nan,
                "heldout_label_correct": float((w * heldout.label_correct_optimized).sum())
                if w is not None
                else np.nan,
                "images_rendered_per_run": seconds["rendered"],
                "seconds_per_run": seconds["pgd_s"]
                + seconds["filter_s"]
                + seconds["selection_s"]
                + seconds["rendered"] * per_image,
            }
        )
    return pd.DataFrame(rows)


def choose_default(
    arms: pd.DataFrame,
    index: str = "arm",
    tolerance: float = LABEL_TOLERANCE,
    paper: str = "GALOT",
    margin: float = EQUIVALENCE_MARGIN,
) -> str:
    """The rule fixed before the choice run: the paper's method (``paper``) stays the default unless a
    label-preserving arm (kept images judged right at most ``tolerance`` less often than eps 0's) beats its mean
    average accuracy by more than ``margin``; then the best such arm. Without a judge (labels not measured) every arm
    is a candidate. Why the margin: the choice run has a seed or two, whose arms differ by tenths of a point (the
    committed run's seven arms lie within 1.1 points on one seed), while a seed's own spread of a paired difference is
    0.5-1.5 points; the highest mean alone picks noise, and the headline would then report a noise-chosen arm."""
    plain = arms.set_index(index).loc["eps 0", "kept_label_correct"]
    keeps_labels = arms if pd.isna(plain) else arms[arms.kept_label_correct >= plain - tolerance]
    best = keeps_labels.sort_values("average", ascending=False).iloc[0]
    if paper not in set(arms[index]):
        return str(best[index])
    paper_average = arms.set_index(index).loc[paper, "average"]
    return str(best[index]) if best.average > paper_average + margin else paper


def curve_check(df: pd.DataFrame, methods, index: str = "method") -> pd.DataFrame:
    """Learning curves that must not fall: for each of ``methods`` (the pool baselines: more labels, same recipe)
    and each cycle after the first, the change of test accuracy from the cycle before, paired by seed, with its 95%
    interval; ``falls`` where the whole interval lies below zero (a drop larger than the seeds' own noise, which
    points at the trainer, not at the labels)."""
    rows = []
    for method, part in df[df[index].isin(list(methods))].groupby(index, sort=False):
        curve = part.pivot_table(index="seed", columns="cycle", values="accuracy")
        for cycle in curve.columns[1:]:
            change = (curve[cycle] - curve[cycle - 1]).dropna()
            mean, low, high = mean_ci(change)
            rows.append(
                {
                    index: method,
                    "cycle": int(cycle),
                    "seeds": len(change),
                    "change": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "falls": bool(high < 0),
                }
            )
    return pd.DataFrame(rows, columns=[index, "cycle", "seeds", "change", "ci_low", "ci_high", "falls"])


# ----------------------------------------------------------------------------- held-out informativeness
def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The cycle records that carry a held-out measurement."""
    return df[df.heldout_n.fillna(0) > 0] if "heldout_n" in df else df[:0]


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
    out = (
        part.groupby(by, sort=False)
        .agg(pgd_s=("pgd_s", "mean"), pgd_steps=("pgd_steps", "first"), gain=("heldout_gain", "mean"))
        .reset_index()
    )
    out["pgd_s_per_step"] = out.pgd_s / out.pgd_steps
    out["gain_per_pgd_s"] = out.gain / out.pgd_s
    if "grad_cosine_full" in part:
        fid = part.groupby(by, sort=False)[["grad_cosine_full", "grad_sign_agreement_full"]].mean().reset_index()
        out = out.merge(fid, on=by)
    return out


def estimators_table(df: pd.DataFrame) -> pd.DataFrame:
    """Sec. 4.5's estimators study per setting: fidelity and cost (``cost_table``), held-out gain and labels
    (``heldout_table``), and the final accuracy averaged over seeds."""
    final = per_seed(df, "final", "setting").groupby(level=0).mean().rename("final_accuracy")
    table = cost_table(df, "setting").merge(heldout_table(df, "setting"), on="setting")
    return table.merge(final, left_on="setting", right_index=True)


# ----------------------------------------------------------------------------- the paper's claims
def table1_summary(tables: dict[str, pd.DataFrame], paper: pd.DataFrame, strategies) -> pd.DataFrame:
    """Ours and the paper's Table 1, side by side: the best pool baseline, the GALOT rows and the
    Improvement row (GALOT minus the best baseline per column) averaged, and the columns GALOT wins."""

    def row(source: str, table: pd.DataFrame, improvement: pd.Series) -> dict:
        best = table.loc[[s for s in strategies if s in table.index], "Average"]
        return dict(
            source=source,
            best_baseline=best.idxmax(),
            best_baseline_avg=best.max(),
            galot_basic_avg=table.loc["GALOT (basic)", "Average"],
            galot_avg=table.loc["GALOT", "Average"],
            improvement_avg=float(table.loc["Improvement", "Average"]),
            galot_wins_columns=f"{(improvement > 0).sum()}/{len(improvement)}",
        )

    rows = []
    for dataset, table in tables.items():
        labels = [c for c in table.columns if str(c).isdigit()]  # the label counts (not Table 1's extra columns)
        rows.append(row(f"ours: {dataset}", table, table.loc["Improvement", labels]))
    for dataset, part in paper.groupby("dataset", sort=False):
        part = part.set_index("method")
        improvement = part.loc["Improvement"].drop(["dataset", "fully_supervised_accuracy", "Average"]).astype(float)
        rows.append(row(f"paper: {dataset}", part, improvement))
    return pd.DataFrame(rows)


def figure3_claims(table: pd.DataFrame, full: float) -> pd.DataFrame:
    """Fig. 3's claims in numbers (``table``: mean accuracy per method and AL budget, plus Average)."""
    last = [c for c in table.columns if c != "Average"][-1]
    cycles = table.loc[["AL+GAL", "AL"]].drop(columns="Average")
    return pd.DataFrame(
        [
            dict(claim="GAL-only accuracy at the last cycle", value=table.loc["GAL", last]),
            dict(
                claim="AL+GAL minus AL, averaged over cycles",
                value=table.loc["AL+GAL", "Average"] - table.loc["AL", "Average"],
            ),
            dict(claim="cycles where AL+GAL beats AL", value=int((cycles.loc["AL+GAL"] > cycles.loc["AL"]).sum())),
            dict(claim="fully supervised minus AL+GAL at the last cycle", value=full - table.loc["AL+GAL", last]),
        ]
    )


def transfer_claims(table: pd.DataFrame, baselines, galot_row: str, models) -> dict:
    """Sec. 4.3's claims: how many transfer networks beat both AL baselines, and the GALOT classifier."""
    best_base = table.loc[list(baselines), "Average"].max()
    return dict(
        models_above_both_AL_baselines=f"{sum(table.loc[m, 'Average'] > best_base for m in models)}/{len(models)}",
        models_above_galot_classifier=f"{sum(table.loc[m, 'Average'] > table.loc[galot_row, 'Average'] for m in models)}/{len(models)}",
    )


# The paper's Table 2 (tables/table2_transferability_cifar10.csv) as it names its rows
PAPER_TABLE2_GALOT_ROW = "Baseline (Resnet 18)"
PAPER_TABLE2_MODELS = ["VGG16", "DenseNet121", "MobileNetv2", "DLA"]


def table2_comparisons(models, baselines, galot_row: str) -> list[tuple[str, list[str]]]:
    """Sec. 4.3: each network trained on GALOT's sets against both AL baselines and against the profile's classifier
    trained on the same sets (``galot_row``), paired by seed: the comparisons the paper's three claims rest on."""
    return [(m, [*baselines, galot_row]) for m in models]


def transfer_claims_side_by_side(
    table: pd.DataFrame, paper: pd.DataFrame, baselines, galot_row: str, models, seeds: int
) -> pd.DataFrame:
    """Sec. 4.3's claims as counts on our Table 2's means over ``seeds`` seeds and on the paper's one run, one row
    each: descriptions, not verdicts (the paired tests of :func:`table2_comparisons` and the claims ledger decide)."""
    ours = "ours (one seed, no interval)" if seeds == 1 else f"ours (means of {seeds} seeds; tested pairwise below)"
    return pd.DataFrame(
        [
            dict(source=ours, **transfer_claims(table, baselines, galot_row, models)),
            dict(
                source="paper (one run)",
                **transfer_claims(paper, baselines, PAPER_TABLE2_GALOT_ROW, PAPER_TABLE2_MODELS),
            ),
        ]
    )


def table9(judged: pd.DataFrame, class_names) -> pd.DataFrame:
    """Table 9's layout: images the judge assigns to their prompt's class, per (eps, template) and class, and the
    total, the classes in the data set's order."""
    counts = judged.pivot_table(index=["eps", "template"], columns="class_name", values="correct", aggfunc="sum")
    counts = counts[list(class_names)]
    counts["total"] = counts.sum(axis=1)
    return counts


def pseudo_label_accuracy(judged: pd.DataFrame, templates) -> pd.DataFrame:
    """Sec. 4.4: the share of images the judge assigns to their prompt's class, per template (rows) and eps."""
    acc = judged.groupby(["template", "eps"])[["correct", "total"]].sum()
    return (acc.correct / acc.total).unstack("eps").reindex(list(templates))


# ----------------------------------------------------------------------------- the run's wall time
def run_timings(results: Path) -> pd.DataFrame:
    """The steps of the run of every section that ``timings.csv`` holds (``run_all.sh`` starts the file with such
    a run; later runs of single sections add rows under their own run ids)."""
    timings = pd.read_csv(Path(results) / "timings.csv", parse_dates=["started_at", "finished_at"])
    return timings[timings.run_id == timings.run_id.iloc[0]]


def run_wall_seconds(results: Path) -> float:
    """First start to last finish of that run (its notebooks may run side by side after the grid)."""
    timings = run_timings(results)
    return (timings.finished_at.max() - timings.started_at.min()).total_seconds()
