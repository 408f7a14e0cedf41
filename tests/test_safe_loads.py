"""Reading a run folder, a cache, an output folder or a data set never runs code: a crafted pickle is refused with
the file's name before anything in it runs; a truncated state is named too; today's states still read back."""

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_loop import config, tiny_sets

from galot_lib.core.io import UnreadableStateError, load_torch, save_torch
from galot_lib.learning.formats import DataFileError
from galot_lib.learning.loop import run_active_learning
from galot_lib.stand_ins.fixture_data import write_cifar

LIBRARY = Path(__file__).resolve().parents[1] / "galot_lib"


class RunsCodeWhenUnpickled:
    """A pickled object whose loading calls ``open(marker, "w")``: the marker file exists iff the code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_state(path: Path, marker: Path) -> Path:
    """A state.pt as the AL loop writes it, but whose records carry the code-running object."""
    torch.save(dict(config_hash="x", records=[RunsCodeWhenUnpickled(marker)], labeled=np.arange(3)), path)
    return path


def test_a_crafted_run_state_is_refused_and_its_code_does_not_run(tmp_path):
    pool, test = tiny_sets()
    marker = tmp_path / "ran"
    crafted_state(tmp_path / "state.pt", marker)
    with pytest.raises(UnreadableStateError, match=re.escape(str(tmp_path / "state.pt")) + " holds io.open"):
        run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, progress=False)
    assert not marker.exists()


def test_a_truncated_run_state_names_the_file(tmp_path):
    pool, test = tiny_sets()
    run_active_learning(config(cycles=1), pool, test, seed=0, run_dir=tmp_path, progress=False)
    state = tmp_path / "state.pt"
    state.write_bytes(state.read_bytes()[:200])
    with pytest.raises(UnreadableStateError, match=re.escape(str(state)) + " is truncated or not a torch state"):
        run_active_learning(config(cycles=1), pool, test, seed=0, run_dir=tmp_path, progress=False)


def test_todays_states_read_back_with_their_numpy_fields(tmp_path):
    """The AL loop's state keeps numpy index arrays and numpy scalars in records: admitted by name, read back equal."""
    pool, test = tiny_sets()
    records = run_active_learning(config(cycles=2), pool, test, seed=0, run_dir=tmp_path, progress=False)
    state = load_torch(tmp_path / "state.pt")
    assert state["records"] == records and isinstance(state["labeled"], np.ndarray)
    scalars = dict(f=np.float64(0.25), i=np.int64(3), b=np.bool_(True), h=np.float16(1.5), u=np.uint8(7))
    save_torch(scalars, tmp_path / "scalars.pt")
    back = load_torch(tmp_path / "scalars.pt")
    assert back == scalars and all(type(back[k]) is type(v) for k, v in scalars.items())


def test_a_gal_only_runs_state_with_no_labels_reads_back(tmp_path):
    """A GAL-only run labels nothing: its state's empty index array is pickled with a call of bytes(), which the safe
    reader admits (refused, the grid's GAL runs could not be read back by the notebooks, nor resumed)."""
    save_torch(dict(labeled=np.zeros(0, np.int64), empty=np.zeros((0, 3), np.float32)), tmp_path / "state.pt")
    back = load_torch(tmp_path / "state.pt")
    assert back["labeled"].dtype == np.int64 and back["labeled"].shape == (0,) and back["empty"].shape == (0, 3)


@pytest.mark.parametrize("reader", ["text_to_model", "annotation panel", "Table 2 replay", "generated cache"])
def test_every_reader_of_a_saved_state_refuses_a_crafted_one(reader, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    if reader == "text_to_model":
        from galot_lib.text_to_model import STATE, _resume

        crafted_state(tmp_path / STATE, marker)
        with pytest.raises(UnreadableStateError, match=STATE):
            _resume(tmp_path, {}, "SmallCNN", 3, 1)
    elif reader == "annotation panel":
        from galot_lib.interactive.annotate import IMAGES, load_judged

        crafted_state(tmp_path / IMAGES, marker)
        with pytest.raises(UnreadableStateError, match=IMAGES):
            load_judged(tmp_path)
    elif reader == "Table 2 replay":
        from galot_lib.experiments.runs import ReplayGenerated

        monkeypatch.setenv("GALOT_RUNS_DIR", str(tmp_path / "runs"))
        folder = tmp_path / "runs" / "GALOT-abc123" / "seed0"
        folder.mkdir(parents=True)
        crafted_state(folder / "state.pt", marker)
        replay = ReplayGenerated([dict(seed=0, cycle=0, config_hash="abc123")], seed=0)
        with pytest.raises(UnreadableStateError, match="state.pt"):
            replay(0, None, 0, 0)
    else:  # a cache entry that cannot be read is regenerated (with a warning naming it), never unpickled
        from galot_lib.generation.cache import GeneratedCache

        cache = GeneratedCache(tmp_path / "cache")
        cache.path("ab12").parent.mkdir(parents=True)
        crafted_state(cache.path("ab12"), marker)
        with pytest.warns(UserWarning, match="ab12.pt is unreadable"):
            assert cache.get("ab12") is None
    assert not marker.exists()


def test_a_crafted_cifar_batch_is_refused_and_its_code_does_not_run(tmp_path):
    from galot_lib.learning.data import load_dataset

    write_cifar(tmp_path, 10, train_per_class=1, test_per_class=1)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    good = pickle.load(open(batch, "rb"), encoding="bytes")  # noqa: S301 - the test's own file
    marker = tmp_path / "ran"
    with open(batch, "wb") as f:
        pickle.dump({**good, b"labels": RunsCodeWhenUnpickled(marker)}, f, protocol=2)
    with pytest.raises(DataFileError, match=re.escape(str(batch)) + " asks to load io.open"):
        load_dataset("cifar10", "test", tmp_path)
    assert not marker.exists()
    with open(batch, "wb") as f:  # an object array: its items could be anything, so the dtype alone is refused
        pickle.dump({**good, b"data": np.array([None] * 3072, dtype=object)}, f, protocol=2)
    with pytest.raises(DataFileError, match=re.escape(str(batch)) + " cannot be read"):
        load_dataset("cifar10", "test", tmp_path)


def test_nothing_in_the_library_unpickles_outside_the_safe_readers():
    """Every torch state goes through ``core.io.load_torch`` and every CIFAR batch through its restricted reader."""
    found = []
    for path in LIBRARY.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if "weights_only=False" in code or ("torch.load(" in code and path.name != "io.py"):
                found.append(f"{path.relative_to(LIBRARY)}:{n}: {line.strip()}")
            if re.search(r"\bpickle\.loads?\(|\bUnpickler\(", code) and path.name != "formats.py":
                found.append(f"{path.relative_to(LIBRARY)}:{n}: {line.strip()}")
    assert not found, found
