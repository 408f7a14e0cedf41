#!/usr/bin/env bash
# Reproduce the GALOT paper section by section, headless, or run the test suite.
#
#   ./run_all.sh                          every notebook on the embedded profile (Fashion-MNIST, CPU)
#   ./run_all.sh --profile smoke          the same, tiny (minutes)
#   ./run_all.sh --profile paper          the paper's settings (GPU, Stable Diffusion, CIFAR/TinyImageNet)
#   ./run_all.sh --only 4.2               one section (4.1 4.2 4.3 4.4 4.5 B)
#   ./run_all.sh -p SEEDS "[0]"           extra papermill parameters, passed to every notebook
#   ./run_all.sh --test                   set up, then the whole test suite
#
# Set-up on a fresh machine: uses the active Python environment if galot_lib imports there,
# otherwise creates .venv and installs the project into it; makes Fashion-MNIST available
# (Debian's dataset-fashion-mnist, installed when missing and run as root, else torchvision's
# download). Executed notebooks, tables and figures land in results/<profile>/.
set -euo pipefail
cd "$(dirname "$0")"

profile="embedded"
only=""
mode="notebooks"
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --test) mode="test"; shift ;;
    -p|--parameters) extra+=(-p "$2" "$3"); shift 3 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (valid: --profile smoke|embedded|paper, --only SECTION, -p NAME VALUE, --test)" >&2; exit 2 ;;
  esac
done
case "$profile" in smoke|embedded|paper) ;; *) echo "run_all.sh: unknown profile '$profile' (valid: smoke, embedded, paper)" >&2; exit 2 ;; esac

# ---------------------------------------------------------------- environment
stamp_of() { sha256sum pyproject.toml | cut -c1-16; }
if python3 -c "import galot_lib" >/dev/null 2>&1 && [[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]]; then
  echo "== using the active environment: $(command -v python3)"
else
  if [[ ! -x .venv/bin/python ]]; then
    echo "== creating .venv"
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
  if [[ "$(cat .venv/.galot-installed 2>/dev/null || true)" != "$(stamp_of)" ]] || ! python -c "import galot_lib" >/dev/null 2>&1; then
    echo "== installing the project into .venv (torch + torchvision pair, diffusers, jupyter, ...)"
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -e .
    stamp_of > .venv/.galot-installed
  fi
fi
python - <<'PY'
import torch, torchvision  # a mismatched pair fails right here, before any work
print(f"== torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA available: {torch.cuda.is_available()}")
PY

# ---------------------------------------------------------------- data
if [[ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
  echo "== installing Debian's dataset-fashion-mnist"
  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || true
fi
python -m galot_lib.learning.data --download

# ---------------------------------------------------------------- work
if [[ "$mode" == "test" ]]; then
  echo "== test suite"
  exec python -m pytest -q
fi

mapfile -t notebooks < <(python -m galot_lib.paper.sections notebooks ${only:+--only "$only"})
out="results/$profile"
mkdir -p "$out/notebooks"
timings="$out/timings.csv"
[[ -f "$timings" ]] || echo "notebook,profile,seconds,finished_at" > "$timings"
export GALOT_PROFILE="$profile"
i=0
for nb in "${notebooks[@]}"; do
  i=$((i + 1))
  name="$(basename "$nb")"
  echo "== [$i/${#notebooks[@]}] $name ($profile)"
  start=$(date +%s)
  papermill "$nb" "$out/notebooks/$name" -p PROFILE "$profile" "${extra[@]}" --progress-bar --cwd notebooks
  seconds=$(( $(date +%s) - start ))
  echo "$name,$profile,$seconds,$(date -Iseconds)" >> "$timings"
  echo "   done in ${seconds}s"
done
echo "== results in $out/ (timings: $timings)"
