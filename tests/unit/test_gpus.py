"""Counting GPUs without torch: nvidia-smi's answer, narrowed by CUDA_VISIBLE_DEVICES as CUDA does."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from studio import gpus
from studio.jobs.devices import visible_gpus


def fake_nvidia_smi(folder, output: str, code: int = 0) -> None:
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nprintf '{output}'\nexit {code}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A PATH holding only a fake nvidia-smi (and nothing else), and a clean detection cache."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("STUDIO_FAKE_GPUS", raising=False)
    gpus.clear_cache()
    yield tmp_path
    gpus.clear_cache()


def test_counts_the_gpus_nvidia_smi_lists(machine):
    fake_nvidia_smi(machine, "0\\n1\\n2\\n3\\n")
    assert visible_gpus() == ["0", "1", "2", "3"]


def test_cuda_visible_devices_narrows_the_list_like_cuda(machine, monkeypatch):
    fake_nvidia_smi(machine, "0\\n1\\n2\\n3\\n")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,2")  # 7 does not exist: CUDA stops there
    assert visible_gpus() == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a2c,0")
    assert visible_gpus() == ["GPU-8a2c", "0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []


def test_a_failing_driver_means_no_gpu(machine):
    fake_nvidia_smi(machine, "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver\\n", code=9)
    assert visible_gpus() == []


def test_fake_gpus_win_over_the_hardware(machine, monkeypatch):
    fake_nvidia_smi(machine, "0\\n")
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "3")
    assert visible_gpus() == ["0", "1", "2"]


def test_without_nvidia_smi_a_cpu_build_of_torch_is_not_even_asked(machine, monkeypatch):
    from importlib import metadata

    monkeypatch.setattr(metadata, "version", lambda name: "2.9.0+cpu")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("torch was asked"))
    assert visible_gpus() == []


def test_detecting_gpus_does_not_import_torch():
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_FAKE_GPUS"}
    code = "import sys; from studio.jobs.devices import visible_gpus; visible_gpus(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_gpu_memory_is_read_from_nvidia_smi_by_index_or_uuid(machine):
    tool = machine / "nvidia-smi"
    tool.write_text("#!/bin/sh\n"
                    'case "$1" in --query-gpu=index) printf "0\\n1\\n";;\n'
                    '*) printf "0, GPU-8a2c, 143771\\n1, GPU-77f0, 81559\\n";; esac\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    assert visible_gpus() == ["0", "1"]
    assert gpus.memory_gib(["0"]) == pytest.approx(140.4, abs=0.1)
    assert gpus.memory_gib(["0", "GPU-77f0"]) == pytest.approx(79.6, abs=0.1)  # the smallest
    assert gpus.memory_gib(["7"]) is None


def test_no_nvidia_smi_means_no_gpu_memory_known(machine):
    assert gpus.memory_gib(["0"]) is None
