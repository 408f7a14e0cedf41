"""What every profile field accepts, checked when a profile is built (and so before a notebook computes anything):
a bad value, from a profile or from ``papermill -p``, stops with the field's name and its accepted values."""

from __future__ import annotations

import ast
import math

from ..generation.galot import GalotConfig
from ..generation.prompts import check_template
from ..learning.train import TrainConfig, with_recipe


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ints(v, low: int) -> bool:
    return isinstance(v, tuple) and len(v) > 0 and all(_is_int(x) and x >= low for x in v) and len(set(v)) == len(v)


POSITIVE_INT = (lambda v: _is_int(v) and v >= 1, "an integer >= 1")


def _eps_values(example: str):
    return (
        lambda v: isinstance(v, tuple) and len(v) > 0 and all(_is_number(e) and e >= 0 for e in v),
        f"a non-empty tuple of numbers >= 0, e.g. {example}",
    )


# field -> (test, accepted values as the message says them); the fields with a name registry (data sets, models,
# strategies) and the GALOT options are checked in Profile.__post_init__ with their valid names.
RULES = {
    "name": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "table1_datasets": (lambda v: isinstance(v, tuple) and len(v) > 0, "a non-empty tuple of data set names"),
    "pool_size": (lambda v: v is None or (_is_int(v) and v >= 1), "None (the whole split) or an integer >= 1"),
    "test_size": (lambda v: v is None or (_is_int(v) and v >= 1), "None (the whole split) or an integer >= 1"),
    "seeds": (lambda v: _ints(v, 0), "a non-empty tuple of distinct integers >= 0, e.g. (0, 1)"),
    "baseline_seeds": (lambda v: _ints(v, 0), "a non-empty tuple of distinct integers >= 0, e.g. (0, 1)"),
    "study_seeds": (lambda v: _ints(v, 0), "a non-empty tuple of distinct integers >= 0, e.g. (0,)"),
    "ablation_seeds": (lambda v: _ints(v, 0), "a non-empty tuple of distinct integers >= 0, e.g. (0, 1, 2)"),
    "choice_seeds": (
        lambda v: v == () or _ints(v, 0),
        "a tuple of distinct integers >= 0 not among seeds, e.g. (5, 6), or () for no choice run",
    ),
    "extra_seeds": (
        lambda v: (
            isinstance(v, tuple)
            and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and _ints(p[1], 0) for p in v)
            and len({p[0] for p in v}) == len(v)
        ),
        "a tuple of (run name, seeds) pairs, each run once, e.g. (('GALOT', (6, 7)), ('BADGE', (6,))), or ()",
    ),
    "default_arm": (lambda v: isinstance(v, str) and v != "", "the name of an arm of profiles.PAYOFF_ARMS"),
    "payoff_arms": (
        lambda v: isinstance(v, tuple) and len(v) > 0 and all(isinstance(a, str) for a in v),
        "a non-empty tuple of names of profiles.PAYOFF_ARMS, with 'eps 0' and 'GALOT'",
    ),
    "zero_shot_test_images": POSITIVE_INT,
    "cycles": POSITIVE_INT,
    "transfer_cycles": POSITIVE_INT,
    "ablation_cycles": POSITIVE_INT,
    "initial_labeled": POSITIVE_INT,
    "query_size": POSITIVE_INT,
    "candidates": (lambda v: v is None or (_is_int(v) and v >= 1), "None (the whole pool) or an integer >= 1"),
    "transfer_models": (lambda v: isinstance(v, tuple) and len(v) > 0, "a non-empty tuple of model names"),
    "strategies": (lambda v: isinstance(v, tuple) and len(v) > 0, "a non-empty tuple of strategy names"),
    "headline_baselines": (lambda v: isinstance(v, tuple), "a tuple of strategy names"),
    "train": (lambda v: isinstance(v, TrainConfig), "a TrainConfig"),
    "galot": (lambda v: isinstance(v, GalotConfig), "a GalotConfig"),
    "t2i_model": (lambda v: isinstance(v, str) and v != "", "'bundled', a diffusers model id or a model folder"),
    "table4_eps": _eps_values("(0.0, 0.25, 0.5)"),
    "fig4_eps": _eps_values("(0.0, 0.5, 1.0)"),
    "fig4_per_class": POSITIVE_INT,
    "fully_supervised_epochs": POSITIVE_INT,
    "fully_supervised_batch_size": POSITIVE_INT,
    "gaal_gan_steps": POSITIVE_INT,
    "gaal_search_steps": POSITIVE_INT,
    "memory_budget_gb": (
        lambda v: v is None or (_is_number(v) and v > 0),
        "None (half this machine's memory) or a number of GiB > 0",
    ),
    "max_batch": POSITIVE_INT,
    "basic_template": (lambda v: _template(v), "a template with '{label}' once, e.g. '{label}'"),
    "templates": (
        lambda v: isinstance(v, tuple) and len(v) > 0 and all(_template(t) for t in v),
        "a non-empty tuple of templates, each with '{label}' once",
    ),
    "data_dir": (lambda v: v is None or (isinstance(v, str) and v != ""), "None ($GALOT_DATA_DIR) or a folder"),
}


def _template(value) -> bool:
    try:
        check_template(value)
    except ValueError:
        return False
    return True


def check_fields(profile) -> None:
    """Every field against its rule."""
    for name, (test, accepted) in RULES.items():
        value = getattr(profile, name)
        if not test(value):
            raise ValueError(f"profile field {name!r} = {value!r} is not accepted: {accepted}")


def parse_parameter(name: str, current, value):
    """A notebook parameter as ``papermill -p`` hands it (a string) read as the field's type: "[0, 1]" -> (0, 1); a
    training configuration may be given as a recipe name ("low-variance")."""
    if isinstance(current, TrainConfig) and isinstance(value, str):
        return with_recipe(current, value)
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            accepted = RULES.get(name, (None, "a Python literal"))[1]
            raise ValueError(
                f"profile field {name!r}: cannot read the parameter value {value!r} ({err}); accepted: {accepted}"
            ) from err
    if isinstance(current, tuple) and isinstance(value, (list, tuple)):
        value = _as_tuples(value)
    return value


def _as_tuples(value):
    """Lists, nested too, as the tuples a profile holds (a literal or JSON gives lists)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def choice(name: str, value, accepted: tuple):
    """A notebook parameter that is not a profile field (Appendix B's SEED, Sec. 4.4's ANNOTATION_EPS): read as
    ``parse_parameter`` does and checked to be one of ``accepted``."""
    parsed = value
    if isinstance(value, str) and not any(isinstance(a, str) for a in accepted):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
    if isinstance(parsed, bool) or parsed not in accepted:
        raise ValueError(
            f"notebook parameter {name} = {value!r} is not accepted: one of {', '.join(repr(a) for a in accepted)}"
        )
    return parsed


# The notebooks' parameters (their ``parameters`` cells) and the profile field each sets (Sec. 4.5's CYCLES sets
# ablation_cycles, checked by the same rule); SEED and ANNOTATION_EPS choose among the profile's seeds and eps levels.
# tests/test_profiles.py keeps this in step with the notebooks.
NOTEBOOK_FIELDS = {
    "SEEDS": "seeds",
    "CYCLES": "cycles",
    "DATASETS": "table1_datasets",
    "STRATEGIES": "strategies",
    "MODELS": "transfer_models",
    "EPS": "fig4_eps",
    "PER_CLASS": "fig4_per_class",
    "STUDY_SEEDS": "study_seeds",
    "ABLATION_SEEDS": "ablation_seeds",
    "CHOICE_SEEDS": "choice_seeds",
    "INITIAL_LABELED": "initial_labeled",
    "QUERY_SIZE": "query_size",
    "ARMS": "payoff_arms",
    "T2I": "t2i_model",
    "TRAIN": "train",
}
NOTEBOOK_CHOICES = {"SEED": "seeds", "ANNOTATION_EPS": "fig4_eps"}


def grid_settings(parameters: dict) -> list[tuple[str, str]]:
    """The profile fields that ``./run_all.sh -p NAME VALUE`` changes, as the grid's ``--set FIELD VALUE`` pairs, so
    that the grid computes the runs the notebooks will ask for (choices among a profile's values change no run).
    CYCLES is every AL run's length: Sec. 4.5's and notebook W's choice runs read it as ``ablation_cycles``."""
    settings = []
    for k, v in parameters.items():
        if k != "PROFILE" and k not in NOTEBOOK_CHOICES:
            settings.append((NOTEBOOK_FIELDS[k], v))
            if k == "CYCLES":
                settings.append(("ablation_cycles", v))
    return settings
