"""Which GPUs this machine lets us use, found without importing torch.

The web server has to know the GPUs to schedule runs, but importing torch (and initialising
CUDA) would cost it seconds at start and hundreds of megabytes for as long as it runs. So the
count comes from ``nvidia-smi``, which ships with every NVIDIA driver. Only where there is no
``nvidia-smi`` (a ROCm machine, a driver without its tools) a short-lived Python process asks
torch, and not even that when the installed torch is a CPU-only build.

``CUDA_VISIBLE_DEVICES`` is honoured the way CUDA reads it: when it is set, only the devices it
names (up to the first one that does not exist) are ours, and an empty value hides every GPU.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"
PROBE_TIMEOUT_S = 60


def detected_gpus() -> list[str]:
    """Ids of the GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` values for its children."""
    return list(_detect(os.environ.get(VISIBLE_ENV)))


@functools.lru_cache(maxsize=8)
def _detect(visible: str | None) -> tuple[str, ...]:
    # Cached per value of CUDA_VISIBLE_DEVICES: GPUs do not come and go while a server runs, and
    # the check runs on every submission.
    physical = _nvidia_smi_count()
    if physical is not None:
        return tuple(_named(visible, physical))
    count = _torch_count()
    given = _entries(visible)
    if visible is not None and len(given) >= count:
        return tuple(given[:count])
    return tuple(str(i) for i in range(count))


def _entries(visible: str | None) -> list[str]:
    return [d.strip() for d in (visible or "").split(",") if d.strip()]


def _named(visible: str | None, physical: int) -> list[str]:
    """The devices ``CUDA_VISIBLE_DEVICES`` leaves us out of ``physical`` GPUs."""
    if visible is None:
        return [str(i) for i in range(physical)]
    kept = []
    for entry in _entries(visible):
        if entry.lstrip("-").isdigit():
            if not 0 <= int(entry) < physical:
                break  # CUDA ignores this entry and every one after it
        elif not physical:
            break
        # A UUID (GPU-..., MIG-...) is passed on as given: nvidia-smi's index list cannot check it.
        kept.append(entry)
    return kept


def _nvidia_smi_count() -> int | None:
    """GPUs the NVIDIA driver reports, or None when there is no nvidia-smi to ask."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        result = subprocess.run([tool, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if result.returncode != 0:
        return 0  # a driver that is not loaded (or no device): no GPU to schedule on
    return sum(1 for line in result.stdout.splitlines() if line.strip().isdigit())


def _torch_count() -> int:
    """GPUs torch sees, asked in a child process so this one never imports torch."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        installed = version("torch")
    except PackageNotFoundError:
        return 0
    if "+cpu" in installed:
        return 0
    code = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        return int(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else 0
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return 0


def memory_gib(ids: list[str]) -> float | None:
    """Memory of the smallest of the GPUs ``ids`` (``detected_gpus`` values: indices or UUIDs), in
    GiB, as nvidia-smi reports it; None when it cannot tell."""
    totals = _nvidia_smi_memory()
    known = [totals[i] for i in ids if i in totals]
    return min(known) if known and len(known) == len(ids) else None


@functools.lru_cache(maxsize=1)
def _nvidia_smi_memory() -> dict[str, float]:
    """Each GPU's total memory in GiB, under its index and its UUID."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return {}
    try:
        result = subprocess.run([tool, "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    totals = {}
    for line in result.stdout.splitlines() if result.returncode == 0 else []:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 3 and fields[0].isdigit() and fields[2].replace(".", "", 1).isdigit():
            gib = float(fields[2]) / 1024  # MiB
            totals[fields[0]] = totals[fields[1]] = gib
    return totals


def clear_cache() -> None:
    """Forget what was detected (tests that change the tools or the environment)."""
    _detect.cache_clear()
    _nvidia_smi_memory.cache_clear()
