#!/usr/bin/env bash
# Reproduce the GALOT paper section by section, headless, or run the test suite.
#
#   ./run_all.sh                          every notebook on the embedded profile (Fashion-MNIST, CPU)
#   ./run_all.sh --profile smoke          the same, tiny (minutes)
#   ./run_all.sh --profile paper          the paper's settings (GPU, Stable Diffusion, CIFAR/TinyImageNet)
#   ./run_all.sh --profile paper --rehearse   the same code and settings on a CPU, with tiny stand-ins for the data
#                                         and weights and a few steps (galot_lib/experiments/rehearsal.py; minutes)
#   ./run_all.sh --only 4.2               one section (galot_lib/experiments/registry.py: 4.1 4.2 4.3 4.4 4.5 B W)
#   ./run_all.sh --second-budget          notebook W at a second label budget (500 initial + 500 per cycle, 2 cycles,
#                                         the key arms), in results/<profile>/W-budget500+500/ with its own timings
#   ./run_all.sh --processes 8            compute the sections' runs with 8 processes first, then the notebooks
#                                         (default "auto": one per GPU, else one per CPU core up to 4; 1: no grid)
#   ./run_all.sh --plan                   print what the selected sections would compute, and the GPU time, then stop
#   ./run_all.sh -p SEEDS "[0]"           extra papermill parameters, passed to every notebook
#   ./run_all.sh --check-verdicts         after a run: rerun its headline comparisons with another thread count
#                                         (other float rounding) and write which verdicts held (verdict_check.csv)
#   ./run_all.sh --test                   set up, then the whole test suite
#
# Set-up on a fresh machine: uses the active Python environment if galot_lib imports there,
# otherwise creates .venv and installs the project into it; makes Fashion-MNIST available
# (Debian's dataset-fashion-mnist, installed when missing and run as root, else torchvision's
# download). Executed notebooks, tables and figures land in results/<profile>/, the HTML report in
# results/<profile>/report/index.html.
set -euo pipefail
cd "$(dirname "$0")"

SECTIONS="$(python3 galot_lib/experiments/registry.py ids)"  # the registry's records (standard library only: no set-up)
usage="valid: --profile smoke|embedded|paper, --rehearse (with --profile paper), --only SECTION ($SECTIONS), --second-budget, --processes N|auto, --plan, -p NAME VALUE, --check-verdicts, --test"
fail() { echo "run_all.sh: $1 ($usage)" >&2; exit 2; }

profile="embedded"
only=""
mode="notebooks"
mode_flag=""
set_mode() {  # --plan, --test and --check-verdicts each do something else instead of a run: one of them at most
  [[ -z "$mode_flag" || "$mode_flag" == "$2" ]] || fail "$mode_flag and $2 exclude each other: give one"
  mode="$1"; mode_flag="$2"
}
processes="auto"
rehearse=""
suffix=""  # added to the executed notebooks' names (a study of other settings keeps the run's own notebooks)
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) [[ $# -ge 2 ]] || fail "--profile needs a value"; profile="$2"; shift 2 ;;
    --only) [[ $# -ge 2 ]] || fail "--only needs a section"; only="$2"; shift 2 ;;
    --processes) [[ $# -ge 2 ]] || fail "--processes needs a number"; processes="$2"; shift 2 ;;
    --plan) set_mode plan "$1"; shift ;;
    --rehearse) rehearse=1; shift ;;
    --second-budget)  # notebook W where the classifier's margins mean more (its folder is named by the budget)
      only="W"; suffix="-budget500+500"; shift
      extra+=(-p INITIAL_LABELED 500 -p QUERY_SIZE 500 -p CYCLES 2 -p CHOICE_SEEDS "()"
              -p ARMS "('eps 0', 'GALOT', 'GALOT + filter', 'selection m=4')") ;;
    --test) set_mode test "$1"; shift ;;
    --check-verdicts) set_mode check "$1"; shift ;;
    -p|--parameters) [[ $# -ge 3 ]] || fail "-p needs a name and a value"; extra+=(-p "$2" "$3"); shift 3 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument '$1'" ;;
  esac
done
case "$profile" in smoke|embedded|paper) ;; *) fail "unknown profile '$profile'" ;; esac
if [[ -n "$rehearse" && "$profile" != "paper" ]]; then fail "--rehearse rehearses the paper profile: add --profile paper"; fi
[[ -z "$rehearse" ]] || profile="paper-rehearsal"  # the paper profile's fields with stand-ins (experiments/profiles.py)
if [[ -n "$only" && " $SECTIONS " != *" $only "* ]]; then fail "unknown section '$only'"; fi
if [[ ! "$processes" =~ ^([1-9][0-9]*|auto)$ ]]; then
  fail "--processes must be a positive integer or auto, got '$processes'"
fi

# ---------------------------------------------------------------- environment
# A run needs the notebook tools (pyproject's "notebooks" extra: papermill, JupyterLab, ...); the test command also the
# test tools ("test": pytest, pytest-xdist, nbval, ruff). The stamp records what was installed: an install with the
# test tools serves a plain run too. The torch + torchvision pair is the tested one (constraints.txt).
extra_spec="[notebooks]"
[[ "$mode" != "test" ]] || extra_spec="[notebooks,test]"
stamp_of() { echo "$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)$1"; }
install_project() {  # into the active Python; $1: the extras
  # uv resolves the same pins and unpacks the wheels in parallel (the CUDA-enabled torch wheels come to ~6 GB:
  # ~1.5 min with the bytecode instead of pip's ~3.5 min on a fresh machine); pip is the fallback wherever uv
  # cannot reach the index.
  # Bytecode is compiled here, as pip does, in parallel: left to the first imports, every test process paid for it.
  { python -m pip install --quiet uv \
      && python -m uv pip install --quiet --compile-bytecode --python "$(command -v python)" -c constraints.txt -e ".$1"; } \
    || { echo "== uv failed; installing with pip" >&2; python -m pip install --quiet --upgrade pip \
         && python -m pip install --quiet -c constraints.txt -e ".$1"; }
}
if python3 -c "import galot_lib" >/dev/null 2>&1 && [[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]]; then
  echo "== using the active environment: $(command -v python3)"
  tools="import papermill, nbconvert, ipywidgets"
  [[ "$mode" != "test" ]] || tools="$tools, pytest, xdist, nbval, ruff"
  # --plan runs no notebook: it needs the library only
  if [[ "$mode" != "plan" ]] && ! python3 -c "$tools" >/dev/null 2>&1; then
    echo "== installing the tools this command needs into the active environment (the extras $extra_spec)"
    install_project "$extra_spec"
  fi
else
  if [[ ! -x .venv/bin/python ]]; then
    echo "== creating .venv"
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
  installed="$(cat .venv/.galot-installed 2>/dev/null || true)"
  if [[ "$installed" != "$(stamp_of "$extra_spec")" && "$installed" != "$(stamp_of "[notebooks,test]")" ]] \
      || ! python -c "import galot_lib" >/dev/null 2>&1; then
    echo "== installing the project into .venv (torch + torchvision pair, diffusers, jupyter, ...${extra_spec:+; the test tools})"
    install_project "$extra_spec"
    stamp_of "$extra_spec" > .venv/.galot-installed
  fi
fi
if [[ "$mode" != "plan" ]]; then  # --plan trains nothing
  python - <<'PY'
import torch, torchvision  # a mismatched pair fails right here, before any work
print(f"== torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA available: {torch.cuda.is_available()}")
PY
fi

if [[ -n "$rehearse" ]]; then
  # The rehearsal's stand-ins (galot_lib/experiments/rehearsal.py): written once, outside the real data folders
  # ($GALOT_REHEARSAL_DIR, else ~/.cache/galot/rehearsal).
  python -m galot_lib.experiments.rehearsal
fi

# Every -p NAME VALUE checked against the profile before any work (a bad one is named with what it accepts) and
# resolved once, with the profile, into the run's settings file: the plan, the preflight, the grid, the notebooks and
# the verdict check all read their profile through it ($GALOT_SETTINGS; galot_lib/experiments/profiles.py: get_profile),
# so they compute the same runs. The tests run on their own settings.
if [[ "$mode" != "test" ]]; then
  settings_dir="$(mktemp -d)"
  trap 'rm -rf "$settings_dir"' EXIT
  python -m galot_lib.experiments.profiles --profile "$profile" "${extra[@]}" --write-settings "$settings_dir/settings.json"
  export GALOT_SETTINGS="$settings_dir/settings.json"
fi

if [[ "$mode" == "plan" ]]; then  # the run these settings make, as the grid and the notebooks will compute it
  python -m galot_lib.experiments.plan --profile "$profile" ${only:+--only "$only"}
  exit
fi

# ---------------------------------------------------------------- data
# Fashion-MNIST where the run reads it (the tests always do; a paper run does not)
if [[ "$mode" == "test" ]] || python -m galot_lib.experiments.preflight --profile "$profile" ${only:+--only "$only"} \
    --datasets | grep -qx fashion_mnist; then
  if [[ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null; then
    echo "== installing Debian's dataset-fashion-mnist"
    apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || true
  fi
  python -m galot_lib.learning.data --download
fi
if [[ "$mode" != "test" ]]; then  # every data file, model and folder the run needs, named together before any work
  python -m galot_lib.experiments.preflight --profile "$profile" ${only:+--only "$only"}
fi

# ---------------------------------------------------------------- work
if [[ "$mode" == "check" ]]; then
  python -m galot_lib.reporting.verdict_check --profile "$profile"
  exit
fi
if [[ "$mode" == "test" ]]; then
  echo "== lint and format (ruff, pyproject.toml's settings)"
  python -m ruff check .
  python -m ruff format --check .
  echo "== test suite"
  exec python -m pytest -q -n 2 --dist loadfile  # two workers, a test file on one: the notebooks and their tests together
fi

export GALOT_PROFILE="$profile"
out="results/$profile"
timings="$out/timings.csv"
[[ -z "$suffix" ]] || timings="$out/W$suffix/timings.csv"  # a study of other settings keeps its times beside its results
header="run_id,step,profile,seconds,started_at,finished_at"
run_id="$(date -u +%Y%m%dT%H%M%SZ)-$$"
# Nothing half-written beside the committed results: every section writes into a staging folder (ignored by git) and
# reaches $out/ when its notebook completes; a failed or interrupted run leaves its unfinished sections there, and the
# sections it finished in place (galot_lib/core/paths.py: staging_root).
export GALOT_STAGING_DIR="$PWD/results/.staging/$run_id"
stage="$GALOT_STAGING_DIR/$profile"
mkdir -p "$stage/notebooks"
staged_timings="$GALOT_STAGING_DIR/timings.csv"
echo "$header" > "$staged_timings"
promote() {  # $1: a folder or file of $stage that is complete: it replaces its namesake in $out
  [[ -e "$stage/$1" ]] || return 0
  mkdir -p "$out/$(dirname "$1")"
  rm -rf "${out:?}/$1"
  mv "$stage/$1" "$out/$1"
}
gpus=0  # counted only where the processes or the launcher depend on it
[[ "$processes" == "1" ]] || gpus=$(python -c "import torch; print(torch.cuda.device_count())")
if [[ "$processes" == "auto" ]]; then
  processes=$(( gpus > 0 ? gpus : $(nproc) ))
  (( gpus > 0 || processes <= 4 )) || processes=4
fi
if (( processes > 1 )); then
  # The runs first, shared out over the processes (galot_lib.experiments.grid); the notebooks then find them done. If the
  # launch fails (no loopback networking, say), the notebooks compute what is missing in this one process.
  echo "== computing the runs with $processes processes ($gpus GPUs)"
  grid=(-m galot_lib.experiments.grid --profile "$profile" ${only:+--only "$only"})
  [[ -z "$suffix" ]] || grid+=(--ledger "$stage/W$suffix/grid")  # a study of other settings keeps the run's ledger
  started=$(date -Iseconds); start=$(date +%s)
  if (( gpus > 0 )); then
    launcher=(accelerate launch --multi_gpu --num_processes "$processes")
  else
    launcher=(torchrun --standalone --nproc_per_node "$processes")
  fi
  "${launcher[@]}" "${grid[@]}" || echo "== the grid launch failed; the notebooks compute the remaining runs in one process" >&2
  echo "$run_id,grid ($processes processes)$suffix,$profile,$(( $(date +%s) - start )),$started,$(date -Iseconds)" >> "$staged_timings"
  [[ -n "$suffix" ]] || promote grid  # the grid's ledger (a study's stays in its staged folder, promoted with it)
fi

# The notebooks run headless: each progress bar ends as one line of text, the libraries' own bars are off (no widgets
# saved into the executed notebooks), panels render a static stand-in (galot_lib/core/progress.py, HEADLESS_ENVIRONMENT).
export GALOT_HEADLESS=1 HF_HUB_DISABLE_PROGRESS_BARS=1

# One notebook, headless, into the staging folder; its section reaches $out/ once it completes, its wall time the staged
# timings. Exported for the side-by-side lanes below.
run_notebook() {
  local nb="$1" name started start section
  name="$(basename "$nb")"
  section="$(python3 galot_lib/experiments/registry.py id "$name")$NOTEBOOK_SUFFIX"
  started=$(date -Iseconds); start=$(date +%s)
  echo "== $name ($GALOT_PROFILE) started"
  local -a args
  eval "args=($NOTEBOOK_ARGS)"  # the -p parameters and papermill options, quoted by printf %q
  if ! papermill "$nb" "${STAGE#"$PWD"/}/notebooks/${name%.ipynb}$NOTEBOOK_SUFFIX.ipynb" -p PROFILE "$GALOT_PROFILE" \
      "${args[@]}" --cwd notebooks; then
    echo "== $name failed: its executed notebook and outputs stay in $STAGE/ (results/$GALOT_PROFILE/ is untouched)" >&2
    return 1
  fi
  local seconds=$(( $(date +%s) - start ))
  echo "$RUN_ID,${name%.ipynb}$NOTEBOOK_SUFFIX.ipynb,$GALOT_PROFILE,$seconds,$started,$(date -Iseconds)" >> "$TIMINGS"
  promote "$section"
  promote "notebooks/${name%.ipynb}$NOTEBOOK_SUFFIX.ipynb"
  echo "   $name done in ${seconds}s"
}
export -f run_notebook promote
export STAGE="$stage" NOTEBOOK_SUFFIX="$suffix" TIMINGS="$staged_timings" RUN_ID="$run_id" out stage
NOTEBOOK_ARGS=""
(( ${#extra[@]} == 0 )) || NOTEBOOK_ARGS="$(printf '%q ' "${extra[@]}")"

# With the runs computed by the grid (Sec. 4.4's images too), the notebooks mostly read them back (B still renders
# Fig. 7): they run side by side in as many lanes as the grid had processes, those that load the text-to-image model
# first; each lane takes the next notebook when its last one ends. Without the grid they run one after another.
lanes=$(( processes > 1 ? processes : 1 ))
order=()
(( lanes == 1 )) || order=(--after-grid-work-first)
mapfile -t notebooks < <(python -m galot_lib.experiments.sections notebooks ${only:+--only "$only"} "${order[@]}")
if (( lanes > 1 )); then
  echo "== ${#notebooks[@]} notebooks in $lanes lanes"
  export NOTEBOOK_ARGS="$NOTEBOOK_ARGS --no-progress-bar"  # bars of side-by-side notebooks would interleave
  # The cores shared between the lanes as between the grid's processes: oversubscribed OpenMP threads slow every
  # lane several-fold, and equal thread counts let the notebooks read back what the grid trained (keyed by them).
  threads=$(( $(nproc) / lanes ))
  export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 ))
  printf '%s\0' "${notebooks[@]}" | xargs -0 -n 1 -P "$lanes" bash -c 'run_notebook "$1"' _
else
  export NOTEBOOK_ARGS="$NOTEBOOK_ARGS --progress-bar"
  for nb in "${notebooks[@]}"; do run_notebook "$nb"; done
fi
# The report: every executed notebook as a standalone HTML page and an index (headline, each section's main table and
# figures), in $out/report/; the notebooks are checked on the way (a path of this machine, a widget, an error: named,
# and this script fails).
# The run's timings reach $out/ with its sections: a run of every section starts the file anew (its wall time is the
# headline's); a run of one section (--only) or a study adds its rows under its own run id; a file in another layout
# is kept aside.
if [[ -f "$timings" && "$(head -n 1 "$timings")" != "$header" ]]; then
  mv "$timings" "$timings.$(date +%Y%m%d%H%M%S).old"
fi
if [[ -z "$only" || ! -f "$timings" ]]; then
  mkdir -p "$(dirname "$timings")"
  mv "$staged_timings" "$timings"
else
  tail -n +2 "$staged_timings" >> "$timings"
fi
rm -rf "$GALOT_STAGING_DIR"
python -m galot_lib.reporting.report --results "$out"
echo "== results in $out/ (report: $out/report/index.html, timings: $timings)"
