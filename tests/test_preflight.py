"""A run whose data or weights are missing stops before any work, naming every missing input and where it goes."""

import pytest

from galot_lib.experiments import preflight
from galot_lib.experiments.profiles import get_profile
from galot_lib.stand_ins.fixture_data import write_all


def test_missing_data_and_models_are_named_together_with_where_to_put_them(tmp_path, monkeypatch):
    paper = get_profile("paper").replace(data_dir=str(tmp_path / "data"), t2i_model=str(tmp_path / "no-sd"))
    found = preflight.problems(paper, ["4.1", "4.5"])
    assert [line.split(":")[0] for line in found] == ["cifar10", "cifar100", "tiny_imagenet", "the text-to-image model"]
    assert "cifar-10-python.tar.gz and extract it into" in found[0] and "tiny-imagenet-200.zip" in found[2]
    assert preflight.problems(paper, ["4.3"]) == [found[0]]  # Sec. 4.3 replays generated sets: no generator needed
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip = [p for p in preflight.problems(paper, ["4.5"]) if "CLIP" in p]
    assert clip and "openai/clip-vit-large-patch14 is not in the Hugging Face cache" in clip[0]
    write_all(tmp_path / "data", 1, 1)  # the documented formats, as the rehearsal writes them
    assert preflight.problems(paper.replace(t2i_model="bundled"), ["4.1"]) == []


def test_the_command_stops_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GALOT_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as stopped:
        preflight.main(["--profile", "paper", "--only", "4.2"])
    assert stopped.value.code == 2 and "cifar10" in capsys.readouterr().err
