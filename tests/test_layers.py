"""The house stays layered: a module imports only from its own layer or those below it (core < learning < the
bundled model's weights and encoder < generation < stand-ins < experiments < reporting < interactive < entry
points)."""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PACKAGE = Path(__file__).resolve().parent.parent / "galot_lib"
# galot_lib.<first part> -> its layer; anything not listed (text_to_model, the bundled model's scripts) is an
# entry point on top.
LAYERS = {
    "core": 0,
    "learning": 1,
    "bundled_model": 2,
    "generation": 3,
    "stand_ins": 4,
    "experiments": 5,
    "reporting": 6,
    "interactive": 7,
}
TOP = max(LAYERS.values()) + 1


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 else TOP


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path):
    """The galot_lib modules ``path`` imports (relative imports resolved), with their line numbers."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            names = [".".join(base + ([node.module] if node.module else []))]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        yield from ((name, node.lineno) for name in names if name.startswith("galot_lib"))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    here = module_name(path)
    upward = [f"line {line}: {name}" for name, line in imported(path) if layer(name) > layer(here)]
    assert not upward, f"{here} (layer {layer(here)}) imports from a higher layer: {upward}"


def test_the_layers_are_the_packages():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert set(LAYERS) <= packages and packages - set(LAYERS) == {"bundled"}  # bundled: the model's scripts, on top


def test_the_library_imports_without_the_notebook_tools():
    """`pip install .` (no extras) gives a working library and command lines: every module imports with the notebook
    extra's packages absent; the report and the explorer import them only when called."""
    import subprocess
    import sys

    blocked = ["papermill", "jupyterlab", "ipywidgets", "nbconvert", "nbformat", "IPython", "ipykernel"]
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in (REPO / "galot_lib").rglob("*.py")
        if p.name != "__main__.py"
    )
    code = "import sys\n" + "".join(f"sys.modules[{b!r}] = None\n" for b in blocked)
    code += "".join(f"import {m}\n" for m in modules)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_notebook_tools_are_an_extra_and_the_tested_torch_pair_a_constraint():
    text = (REPO / "pyproject.toml").read_text()
    core = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    assert not any(tool in core for tool in ("jupyterlab", "papermill", "ipywidgets", "ipykernel"))
    assert re.search(r"^notebooks = \[", text, re.M) and re.search(r"^test = \[", text, re.M)
    assert "torch>=" in core and "torch==" not in core  # a range: installs into an existing environment
    pins = (REPO / "constraints.txt").read_text()
    assert "torch==" in pins and "torchvision==" in pins
    assert "-c constraints.txt" in (REPO / "run_all.sh").read_text()
