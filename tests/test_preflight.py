"""A run whose data or weights are missing stops before any work, naming every missing input and where it goes: for
the run its settings make, hub ids checked online (against a stand-in hub) and offline, the folders it writes."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from galot_lib.experiments import preflight
from galot_lib.experiments.profiles import get_profile
from galot_lib.stand_ins.fixture_data import write_all


def test_missing_data_and_models_are_named_together_with_where_to_put_them(tmp_path, monkeypatch):
    paper = get_profile("paper").replace(data_dir=str(tmp_path / "data"), t2i_model=str(tmp_path / "no-sd"))
    found = preflight.problems(paper, ["4.1", "4.5"])
    assert [line.split(":")[0] for line in found] == [
        "cifar10",
        "cifar100",
        "tiny_imagenet",
        "the text-to-image model",
        "the CLIP filter's weights",
        "no GPU",  # the paper profile is planned in GPU-hours: on a CPU it is rehearsed
    ]
    assert "cifar-10-python.tar.gz and extract it into" in found[0] and "tiny-imagenet-200.zip" in found[2]
    assert preflight.problems(paper, ["4.3"]) == [found[0], found[-1]]  # Sec. 4.3 replays generated sets: no generator
    clip = [p for p in preflight.problems(paper, ["4.5"]) if "CLIP" in p]  # the suite runs with HF_HUB_OFFLINE=1
    assert "openai/clip-vit-large-patch14 is not in the Hugging Face cache" in clip[0]
    assert "`hf download openai/clip-vit-large-patch14`" in clip[0]  # the command this huggingface_hub ships
    write_all(tmp_path / "data", 1, 1)  # the documented formats, as the rehearsal writes them
    assert preflight.problems(paper.replace(t2i_model="bundled"), ["4.1"]) == [found[-1]]  # ready, but for the GPU


def test_the_command_stops_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GALOT_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as stopped:
        preflight.main(["--profile", "paper", "--only", "4.2"])
    assert stopped.value.code == 2 and "cifar10" in capsys.readouterr().err


def test_the_settings_reach_the_preflight(tmp_path, monkeypatch, capsys):
    """A CIFAR-10-only paper run needs CIFAR-10 only (-p DATASETS reaches the preflight as --set table1_datasets)."""
    from galot_lib.stand_ins.fixture_data import write_cifar

    monkeypatch.setenv("GALOT_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # as on the GPU machine the run is for
    write_cifar(tmp_path, 10, 1, 1)
    args = ["--profile", "paper", "--only", "4.3"]
    preflight.main([*args, "--set", "table1_datasets", "['cifar10']"])  # ready: no exit
    preflight.main([*args, "--datasets"])
    assert capsys.readouterr().out.split() == ["cifar10"]
    with pytest.raises(SystemExit):
        preflight.main(["--profile", "paper", "--only", "4.1"])  # the profile's three data sets
    assert "cifar100" in capsys.readouterr().err


def test_the_runs_settings_file_reaches_the_preflight(tmp_path, monkeypatch, capsys):
    """./run_all.sh -p T2I FOLDER: the preflight checks the model the run will load, through the settings file."""
    from galot_lib.experiments.profiles import main as resolve

    settings = tmp_path / "settings.json"
    resolve(["--profile", "smoke", "-p", "T2I", str(tmp_path / "no-model"), "--write-settings", str(settings)])
    monkeypatch.setenv("GALOT_SETTINGS", str(settings))
    with pytest.raises(SystemExit) as stopped:
        preflight.main(["--profile", "smoke", "--only", "4.2"])
    assert stopped.value.code == 2 and f"the folder {tmp_path / 'no-model'} does not exist" in capsys.readouterr().err


class StandInHub(BaseHTTPRequestHandler):
    """The hub's model API, as huggingface_hub asks it (GET /api/models/<id>): one complete SD repo, one without
    weights; any other id is not found."""

    repos = {
        "org/sd": ["model_index.json", "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin",
                   "text_encoder/model.fp16.safetensors", "tokenizer/vocab.json"],
        "org/no-weights": ["model_index.json", "unet/config.json"],
    }  # fmt: skip

    def do_GET(self):
        repo = self.path.split("/api/models/")[-1].split("/revision")[0]
        files = self.repos.get(repo)
        body = json.dumps({"id": repo, "siblings": [{"rfilename": f} for f in files or []]}).encode()
        self.send_response(200 if files else 404)
        if not files:
            self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in_hub(monkeypatch, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), StandInHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # nothing cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # "0" is online, as huggingface_hub reads it (at its import)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    yield server
    server.shutdown()


def test_online_a_hub_id_must_be_complete_on_the_hub(stand_in_hub, monkeypatch):
    what = "the text-to-image model"
    assert preflight.missing_model("org/sd", what) is None
    lacking = preflight.missing_model("org/no-weights", what)
    assert "org/no-weights on the hub lacks unet/ weights, vae/ weights, text_encoder/ weights" in lacking
    assert "does not exist on the hub" in preflight.missing_model("org/nothing", what)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    unreachable = preflight.missing_model("org/sd", what)
    assert "the hub cannot be reached" in unreachable and "`hf download org/sd`" in unreachable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE is set" in preflight.missing_model("org/sd", what)


def test_a_folder_the_run_writes_that_cannot_be_written_is_named_with_its_variable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GALOT_RUNS_DIR", str(blocker / "runs"))  # under a file: no folder can be made there
    found = preflight.problems(get_profile("smoke"), ["4.1"])
    assert any(p.startswith(f"{blocker / 'runs'} is not writable") and "set GALOT_RUNS_DIR" in p for p in found)
