"""Prompt templates: the paper's six (Tables 3 and 9) and their validation."""

from __future__ import annotations

# Table 3 writes "a recent color photograph", Table 9 "a recent photograph"; the paper elides the
# tail of the long template ("ultra detailed, ..."), so the project completes it and says so.
PAPER_TEMPLATES = (
    "a photo of a {label}",
    "{label}",
    "a realistic photo of a {label}",
    "a simple photo of a {label}",
    "a recent color photograph of a {label}",
    "a recent color photograph of a {label}, ultra detailed, sharp focus, high resolution",
)
# Phrasings that also appear in the paper (Table 9's spelling); held out of bundled training too.
PAPER_TEMPLATE_VARIANTS = (
    "a recent photograph of a {label}",
    "a recent photograph of a {label}, ultra detailed, sharp focus, high resolution",
)
GALOT_TEMPLATE = "a realistic photo of a {label}"  # Table 8: GALOT
BASIC_TEMPLATE = "{label}"  # Table 8: GALOT (basic)


def check_template(template: str) -> str:
    """A template must contain ``{label}`` exactly once and no other field."""
    if not isinstance(template, str) or template.count("{label}") != 1:
        raise ValueError(f"template {template!r} must contain '{{label}}' exactly once, e.g. 'a photo of a {{label}}'")
    try:
        template.format(label="x")
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"template {template!r} has a field other than '{{label}}': {err}") from err
    return template


def fill(template: str, label: str) -> str:
    return check_template(template).format(label=label)
