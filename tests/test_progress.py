"""Progress bars (galot_lib.core.progress): live by default, one final line each in a headless run, the same
switches in run_all.sh as in the tests' notebook runs."""

import io
import re
from pathlib import Path

from galot_lib.core import progress

REPO = Path(__file__).resolve().parent.parent


def test_headless_bars_write_their_final_state_once(monkeypatch):
    monkeypatch.setenv(progress.HEADLESS_ENV, "1")
    out = io.StringIO()
    for _ in progress.tqdm(range(3), desc="outer", file=out):
        for _ in progress.tqdm(range(2), desc="inner", leave=False, file=out):  # gone when done: writes nothing
            pass
    bar = progress.tqdm(total=4, desc="manual", file=out)
    bar.update(4)
    bar.set_postfix(accuracy=0.5)
    bar.close()
    for _ in progress.tqdm(range(2), desc="off", disable=True, file=out):
        pass
    assert out.getvalue().splitlines() == ["outer: 3/3 in 00:00", "manual: 4/4 in 00:00, accuracy=0.5"]


def test_bars_are_live_where_a_person_watches(monkeypatch):
    monkeypatch.delenv(progress.HEADLESS_ENV, raising=False)
    assert not progress.headless()
    bar = progress.tqdm(range(2), file=io.StringIO())
    assert not isinstance(bar, progress.FinalLineBar)
    bar.close()


def test_run_all_sets_what_the_tests_set():
    exported = re.search(r"^export (GALOT_HEADLESS=.*)$", (REPO / "run_all.sh").read_text(), re.M).group(1)
    assert dict(pair.split("=") for pair in exported.split()) == progress.HEADLESS_ENVIRONMENT
