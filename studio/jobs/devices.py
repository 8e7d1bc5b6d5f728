"""The devices runs are scheduled on: the visible GPUs, or CPU slots when there is no GPU.

A run asks for a number of GPUs (default 1) and gets exactly those, passed to its worker as
``CUDA_VISIBLE_DEVICES``. ``gpus=0`` (or a config with ``training.device: cpu``) asks for a CPU
slot; on a machine without a GPU a one-GPU request also takes a CPU slot, so the same
submission works everywhere. ``STUDIO_FAKE_GPUS=N`` pretends N GPUs exist (for tests of the
scheduler; the workers then train on the CPU).

GPUs are counted with ``nvidia-smi`` (``studio.gpus``): the web server never imports torch for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from studio.errors import ConfigError
from studio.gpus import detected_gpus

FAKE_GPUS_ENV = "STUDIO_FAKE_GPUS"
CPU_PREFIX = "cpu"


def visible_gpus() -> list[str]:
    """Ids of the GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` values for its children."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake not in (None, ""):
        try:
            return [str(i) for i in range(max(0, int(fake)))]
        except ValueError:
            raise ConfigError(f"{FAKE_GPUS_ENV} must be a whole number, got {fake!r}") from None
    return detected_gpus()


@dataclass(frozen=True)
class DevicePool:
    gpus: tuple[str, ...] = ()
    cpu_slots: int = 1

    @classmethod
    def detect(cls, cpu_slots: int = 1, gpus: list[str] | None = None) -> "DevicePool":
        if cpu_slots < 0:
            raise ConfigError(f"cpu_slots must be >= 0, got {cpu_slots}")
        return cls(tuple(visible_gpus() if gpus is None else gpus), cpu_slots)

    @property
    def cpu(self) -> tuple[str, ...]:
        return tuple(f"{CPU_PREFIX}{i}" for i in range(self.cpu_slots))

    def wants_cpu(self, gpus: int) -> bool:
        return gpus == 0 or (gpus == 1 and not self.gpus)

    def check(self, gpus: int) -> None:
        """Refuse a request that could never be scheduled on this machine."""
        if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
            raise ConfigError(f"the number of GPUs must be a whole number >= 0, got {gpus!r}")
        if self.wants_cpu(gpus):
            if not self.cpu_slots:
                raise ConfigError("this server runs no CPU training (0 CPU slots); ask for a GPU")
            return
        if gpus > len(self.gpus):
            have = f"{len(self.gpus)} GPU{'s' if len(self.gpus) != 1 else ''}" if self.gpus else "no GPU"
            raise ConfigError(
                f"the run asks for {gpus} GPUs but this machine has {have}; it could never start",
                hint=f"ask for at most {len(self.gpus)}" if self.gpus else "ask for 1 (a CPU slot) or 0",
            )

    def allocate(self, gpus: int, busy: set[str]) -> list[str] | None:
        """Free devices for the request, or None when it has to wait."""
        pool = self.cpu if self.wants_cpu(gpus) else self.gpus
        need = 1 if self.wants_cpu(gpus) else gpus
        free = [d for d in pool if d not in busy]
        return free[:need] if len(free) >= need else None


def cuda_visible_devices(devices: list[str]) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value for a worker: its GPUs only, none for a CPU slot."""
    return ",".join(d for d in devices if not d.startswith(CPU_PREFIX))


def gpu_count(devices: list[str]) -> int:
    return sum(1 for d in devices if not d.startswith(CPU_PREFIX))
