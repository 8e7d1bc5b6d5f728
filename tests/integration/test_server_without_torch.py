"""The web process never imports torch until a model is needed (the Playground): not to start,
not to count GPUs, not to profile data, estimate, submit, watch, list or evaluate a run.

Two checks: a plain Python process that builds the app and submits a run through the job
manager, and the real server driven through its API the way the page drives it, whose memory
must hold no torch library afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, toy_sentiment_rows, write_csv
from tests.servers import free_port, start_server, stop, wait_until_up

psutil = pytest.importorskip("psutil")
gradio_client = pytest.importorskip("gradio_client")


def real_gpus_env() -> dict[str, str]:
    # No STUDIO_FAKE_GPUS: the real detection has to run, and must not import torch.
    return {k: v for k, v in os.environ.items() if k != "STUDIO_FAKE_GPUS"}


def test_building_the_app_and_submitting_a_run_does_not_import_torch(tmp_path, tiny_encoder):
    data = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(60))
    code = (
        "import sys\n"
        "from studio.config import RunConfig\n"
        "from studio.ui import app\n"
        f"services = app.make_services({str(tmp_path / 'ws')!r}, [{str(tiny_encoder.parent)!r}])\n"
        "app.build_app(services)\n"
        "config = RunConfig.from_dict({'task': {'name': 'classification'}, 'model': {'backbone': "
        f"{str(tiny_encoder)!r}}}, 'data': {{'train': {str(data)!r}}}, 'training': {{'max_steps': 1}}}})\n"
        "run_id = services.jobs.submit(config)\n"
        "services.jobs.cancel(run_id, wait=True)\n"
        "services.jobs.shutdown()\n"
        "print('ray imported' if 'ray' in sys.modules else 'no ray')\n"  # Ray only for the ray executor
        "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=real_gpus_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-2:] == ["no ray", "no torch"]


def ray_libraries(pid: int) -> list[str]:
    return sorted({m.path for m in psutil.Process(pid).memory_maps() if "/ray/" in m.path})


def torch_libraries(pid: int) -> list[str]:
    return sorted({m.path for m in psutil.Process(pid).memory_maps() if "torch" in os.path.basename(m.path).lower()})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's memory maps")
def test_the_running_server_stays_without_torch(tmp_path, tiny_encoder):
    from studio.demo import DATASET, seed_dataset
    from studio.ui.train_tab import ADVANCED
    from studio.workspace import Workspace

    workspace = tmp_path / "workspace"
    seed_dataset(Workspace.at(workspace))  # a saved dataset is a choice the Train tab offers from the start
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(workspace, port, log, "--model-dir", str(tiny_encoder.parent), env={"STUDIO_FAKE_GPUS": ""})
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(server, url, log)
        client = gradio_client.Client(url, verbose=False)
        # Data tab: profiles with the encoder's and the decoder's tokenizers (the decoder is a GGUF).
        for sample in ("chat_en.jsonl", "sentiment_en.csv"):
            client.predict(sample, None, None, api_name="/data_sample")
            profile = client.predict(api_name="/data_profile")
            assert "tokens" in str(profile[-1]), profile[-1]
        # Train tab: estimate, launch (a tiny BERT, two steps), watch it to the end.
        keys = [key for _, _, key in ADVANCED]
        steps = {f"param_{9 + keys.index('training.max_steps')}": 2}
        settings = {"src": f"dataset:{DATASET}", "task_name": "classification", "backbone_name": str(tiny_encoder)}
        client.predict(api_name="/train_estimate", **settings, **{f"param_{7 + keys.index('training.max_steps')}": 2})
        launched = client.predict(api_name="/train_launch", **settings, name="no-torch", **steps)
        assert "queue position" in str(launched[0]), launched[0]
        deadline = time.time() + 300
        while "completed" not in str(status := client.predict(api_name="/train_poll")[0]):
            assert time.time() < deadline and "failed" not in str(status), status
            time.sleep(1)
        # Runs and Evaluate tabs.
        table, *_ = client.predict([], "", "", "", [], None, None, None, api_name="/runs_list")
        run_id = table["data"][0][0]
        client.predict([run_id], api_name="/runs_overlay")
        client.predict(run_id, run_id, api_name="/runs_diff")
        client.predict(None, None, api_name="/eval_runs")
        client.predict(run_id, "test", api_name="/eval_load")
        client.predict("all", "(all)", "(all)", 0, "", api_name="/eval_predictions")
        assert torch_libraries(server.pid) == []
        assert ray_libraries(server.pid) == []  # the executor is local: Ray stays out of the server
    finally:
        stop(server)
