"""Does PGD on the prompt embedding make the generated images more informative, on noise seeds it never
saw, and do they keep their labels? The measurements behind GALOT's embedded defaults.

    python bench/bench_pgd.py estimators   # fidelity of each gradient estimator against the full gradient, cost
    python bench/bench_pgd.py eps          # held-out gain, gradient vs random direction, and label correctness per eps
    python bench/bench_pgd.py steps        # the same for K (PGD steps), N (images per gradient) and eta
    python bench/bench_pgd.py objectives   # the paper's acquisition vs the label-aware prompt_margin objective
    python bench/bench_pgd.py filter       # the diffusion model as a zero-shot label filter: accuracy and cost
    options: [--seeds 100 101 102] [--cycle 0] [--per-class 20] [--threads 2]

Setting: the embedded profile (bundled model, its T and guidance, margin acquisition). For each seed, the
classifier is trained as an AL run trains the one that guides its cycle ``--cycle`` (the initial labels
plus random queries, that cycle's training seed). Held-out images are ``--per-class`` fresh seeds per
class (a seed stream PGD never draws from), rendered from c_y, from c* and from a random sign direction
of the same size; the paired gain is the acquisition of c* (or random) minus that of c_y on the same
seed, and label correctness is the share the reference classifier (the judge, which plays no part in
PGD) assigns to the prompt's class. Figures are means over seeds and classes, +- the standard error
over all paired images.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd
import torch

from galot_lib.bundled_model.reference import load_reference
from galot_lib.core.io import save_table
from galot_lib.experiments import runs
from galot_lib.experiments.profiles import get_profile
from galot_lib.generation.galot import GradientProblem, gradient_agreement, optimize_embeddings
from galot_lib.generation.heldout import measure_directions
from galot_lib.generation.images import class_seeds, generate_images, planned_images
from galot_lib.generation.label_filters import DiffusionZeroShot
from galot_lib.generation.prompts import fill
from galot_lib.learning.loop import initial_indices, training_seed
from galot_lib.learning.train import fit, predict_probs

HELDOUT_CYCLE = 997  # fresh noise seeds: a cycle number no run reaches


def guiding_classifier(profile, pool, seed: int, cycle: int):
    """The classifier an AL run of ``seed`` optimises against in ``cycle`` (random queries for the extra labels)."""
    n = runs.al_config(profile).labels_at(cycle)
    idx = initial_indices(len(pool), profile.initial_labeled, seed)
    if cycle:
        rest = np.setdiff1d(np.arange(len(pool)), idx)
        idx = np.concatenate([idx, np.random.default_rng(seed).choice(rest, n - len(idx), replace=False)])
    idx = torch.as_tensor(idx)
    return fit(
        profile.model,
        pool.images[idx],
        pool.labels[idx],
        pool.num_classes,
        profile.train,
        seed=training_seed(seed, cycle),
    ).model.eval()


class Setup:
    def __init__(self, args):
        torch.set_num_threads(args.threads)
        self.profile = get_profile("embedded")
        self.pool, _ = runs.load_data(self.profile)
        self.model = runs.t2i_model(self.profile)
        self.judge = load_reference()
        self.args = args
        self.c_y = self.model.encode([fill(self.profile.galot.template, n) for n in self.pool.class_names])
        self.classifiers = {s: guiding_classifier(self.profile, self.pool, s, args.cycle) for s in args.seeds}
        self.labels, self.seeds = planned_images([args.per_class] * 10, 0, HELDOUT_CYCLE)
        self._plain = {}

    def render(self, c):
        return generate_images(self.model, c, self.labels, self.seeds, self.profile.galot, 28, 1, 64)

    def plain(self):
        if "images" not in self._plain:
            self._plain["images"] = self.render(self.c_y)
        return self._plain["images"]

    def heldout(self, config, eps: float, seed: int) -> dict:
        """PGD with ``config`` at ``eps`` against seed's classifier, then the paired held-out measurement."""
        classifier = self.classifiers[seed]
        pgd = optimize_embeddings(self.model, classifier, self.c_y, eps, config, class_seeds(seed, 0, 10), 28, 1)
        random = optimize_embeddings(
            self.model,
            None,
            self.c_y,
            eps,
            dataclasses.replace(config, acquisition="RandomSampling"),
            class_seeds(seed, 0, 10),
            28,
            1,
        ).embeddings
        images = {"plain": self.plain(), "optimized": self.render(pgd.embeddings), "random": self.render(random)}
        summary, _ = measure_directions(classifier, self.judge, images, self.labels, config.heldout_acquisition, 28, 1)
        return dict(summary, pgd_s=pgd.seconds, pgd_s_per_step=pgd.seconds / config.pgd_steps)


def pooled(rows: list[dict]) -> dict:
    """Means over seeds; standard errors combined as over all paired images (independent seeds)."""
    df = pd.DataFrame(rows)
    out = df.mean(numeric_only=True).to_dict()
    for col in ("heldout_gain_se", "heldout_random_gain_se"):
        out[col] = float(np.sqrt((df[col] ** 2).sum()) / len(df))
    return out


def show(rows: list[dict], columns: list[str], title: str):
    print(f"\n{title}")
    print(pd.DataFrame(rows)[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)


def heldout_columns(setting: list[str]) -> list[str]:
    return setting + [
        "heldout_gain",
        "heldout_gain_se",
        "heldout_random_gain",
        "heldout_random_gain_se",
        "label_correct_plain",
        "label_correct_optimized",
        "label_correct_random",
        "pgd_s_per_step",
        "gain_per_s",
    ]


def bench_eps(setup: Setup, values, configs: dict[str, object]):
    rows = []
    for name, config in configs.items():
        for eps in values:
            row = pooled([setup.heldout(config, eps, s) for s in setup.args.seeds])
            rows.append(dict(setting=name, eps=eps, **row, gain_per_s=row["heldout_gain"] / row["pgd_s"]))
            print(
                f"  {name} eps {eps}: gain {row['heldout_gain']:+.4f} +- {row['heldout_gain_se']:.4f}, random "
                f"{row['heldout_random_gain']:+.4f}, labels {row['label_correct_optimized']:.3f} "
                f"(plain {row['label_correct_plain']:.3f})",
                flush=True,
            )
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["estimators", "eps", "steps", "objectives", "filter"])
    p.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102], help="seeds no headline run uses")
    p.add_argument("--cycle", type=int, default=0)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--eps", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--csv", help="also write the table here")
    args = p.parse_args()
    setup = Setup(args)
    base = setup.profile.galot
    print(
        f"embedded profile: T = {base.sampling_steps}, guidance {base.guidance}, K = {base.pgd_steps}, "
        f"N = {base.grad_samples}, eta = 2.5 eps / K, {base.norm}; classifier {setup.profile.model} of cycle "
        f"{args.cycle}, seeds {args.seeds}; {args.per_class} held-out images per class",
        flush=True,
    )
    estimators = {"last": dict(estimator="last")}
    estimators.update({f"x0@{j}": dict(estimator="x0", estimator_step=j) for j in range(base.sampling_steps - 1)})
    estimators["full"] = dict(estimator="full")
    if args.what == "estimators":
        rows = []
        owner = torch.arange(10).repeat_interleave(base.grad_samples)
        for seed in args.seeds:
            classifier = setup.classifiers[seed]
            image_seeds = [int(s) for s in np.random.default_rng(seed).integers(0, 2**31, len(owner))]
            grads, seconds = {}, {}
            for name, change in estimators.items():
                cfg = dataclasses.replace(base, **change)
                problem = GradientProblem(setup.model, classifier, cfg, 28, 1, 64, cfg.estimator)
                problem.gradient(setup.c_y, owner[:4], image_seeds[:4])  # warm-up
                t0 = time.perf_counter()
                grads[name], _ = problem.gradient(setup.c_y, owner, image_seeds)
                seconds[name] = time.perf_counter() - t0
            for name, g in grads.items():
                cosine, signs = gradient_agreement(g[:, 1:], grads["full"][:, 1:])
                rows.append(
                    dict(
                        estimator=name,
                        seed=seed,
                        cosine=float(cosine.mean()),
                        sign_agreement=float(signs.mean()),
                        step_s=seconds[name],
                    )
                )
        table = (
            pd.DataFrame(rows)
            .groupby("estimator", sort=False)
            .agg(
                cosine=("cosine", "mean"),
                cosine_sd=("cosine", "std"),
                sign_agreement=("sign_agreement", "mean"),
                step_s=("step_s", "mean"),
            )
            .reset_index()
        )
        show(
            table.to_dict("records"),
            list(table.columns),
            f"gradient of one PGD step (10 classes x N = {base.grad_samples}) against the full-chain gradient",
        )
        held = bench_eps(setup, [0.25], {n: dataclasses.replace(base, **c) for n, c in estimators.items()})
        show(held, heldout_columns(["setting", "eps"]), "held-out gain per estimator at eps 0.25")
        fidelity = table.rename(columns={"estimator": "setting"})
        rows = pd.DataFrame(held).merge(fidelity, on="setting").to_dict("records")
    elif args.what == "eps":
        rows = bench_eps(setup, args.eps, {"gradient (last)": base})
        show(rows, heldout_columns(["setting", "eps"]), "held-out gain and label correctness against eps")
    elif args.what == "steps":
        variants = [
            (f"K{k} N{n}", lambda eps, k=k, n=n: dataclasses.replace(base, pgd_steps=k, grad_samples=n))
            for k in (1, 2, 4)
            for n in (2, 4, 8)
        ]
        variants.append(("K2 N4 eta = eps / K", lambda eps: dataclasses.replace(base, eta=eps / base.pgd_steps)))
        rows = []
        for name, config_at in variants:
            for eps in args.eps:
                cfg = config_at(eps)
                row = pooled([setup.heldout(cfg, eps, s) for s in args.seeds])
                rows.append(dict(setting=name, eps=eps, **row, gain_per_s=row["heldout_gain"] / row["pgd_s"]))
                print(
                    f"  {name} eps {eps}: gain {row['heldout_gain']:+.4f}, labels {row['label_correct_optimized']:.3f}, "
                    f"{row['pgd_s']:.1f} s",
                    flush=True,
                )
        show(rows, heldout_columns(["setting", "eps"]), "held-out gain against K, N and eta")
    elif args.what == "objectives":
        rows = bench_eps(
            setup,
            args.eps,
            {"acquisition": base, "prompt_margin": dataclasses.replace(base, objective="prompt_margin")},
        )
        show(rows, heldout_columns(["setting", "eps"]), "the paper's objective against the label-aware one")
    else:
        test = runs.load_data(setup.profile)[1]
        zero_shot = DiffusionZeroShot(setup.model, setup.c_y)
        real = test.subset(np.arange(0, len(test), len(test) // 500))
        t0 = time.perf_counter()
        real_acc = float((zero_shot.predict(real.images) == real.labels).float().mean())
        per_image = (time.perf_counter() - t0) / len(real)
        rows = [dict(images="real test images", n=len(real), zero_shot_accuracy=real_acc, s_per_image=per_image)]
        for eps in args.eps:
            for seed in args.seeds[:1]:
                classifier = setup.classifiers[seed]
                pgd = optimize_embeddings(
                    setup.model, classifier, setup.c_y, eps, base, class_seeds(seed, 0, 10), 28, 1
                )
                images = setup.render(pgd.embeddings)
                judged = predict_probs(setup.judge, images).argmax(1) == setup.labels
                all_classes = zero_shot.predict(images) == setup.labels
                rivals = predict_probs(classifier, images).scatter(1, setup.labels[:, None], -1.0).argmax(1)
                t0 = time.perf_counter()
                pairwise = zero_shot.keeps(images, setup.labels, rivals)
                pair_s = (time.perf_counter() - t0) / len(images)
                for name, passed, cost in (
                    ("all classes", all_classes, per_image),
                    ("vs the classifier's rival", pairwise, pair_s),
                ):
                    rows.append(
                        dict(
                            images=f"generated, eps {eps}, {name}",
                            n=len(images),
                            judge_correct=float(judged.float().mean()),
                            pass_rate=float(passed.float().mean()),
                            judge_correct_after_filter=float(judged[passed].float().mean()),
                            s_per_image=cost,
                        )
                    )
        show(
            rows,
            list(pd.DataFrame(rows).columns),
            "the diffusion model as a zero-shot label filter "
            f"(timesteps {zero_shot.timesteps}; agreement with the judge on generated images)",
        )
    if args.csv:
        save_table(pd.DataFrame(rows), args.csv, index=False)


if __name__ == "__main__":
    main()
