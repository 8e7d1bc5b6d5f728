"""The memory allocator of a CPU run's worker: jemalloc when the machine has it.

A training step on a CPU allocates and frees the same activation tensors every step. glibc's
malloc serves blocks under its mmap threshold (up to 32 MiB) from heaps that fragment, and keeps
what it freed mapped. On the SmolLM2 LoRA job of ``benchmarks/memory_profile.py`` the worker's
process tree peaked at 3.65 GiB with glibc and 2.75 GiB with jemalloc, and held 2.8 against
1.2 GiB once training was over (tcmalloc: 2.76 GiB, but it keeps its peak to the end). So a CPU
run's worker gets jemalloc preloaded (``LD_PRELOAD``) when the system has the library (Debian and
Ubuntu: the libjemalloc2 package; the Docker image installs it). ``STUDIO_ALLOCATOR=system``
keeps glibc's. GPU runs keep glibc: their memory is the GPU's.

The memory estimate counts the allocator (``studio.models.estimate``): the plan before launch
asks ``worker_allocator`` what the worker will get, the worker ``running_allocator`` what it got.
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import sys
from pathlib import Path

JEMALLOC, GLIBC = "jemalloc", "glibc"
ALLOCATORS = (JEMALLOC, GLIBC)
ENV_CHOICE = "STUDIO_ALLOCATOR"  # "system": never preload jemalloc


@functools.lru_cache(maxsize=1)
def jemalloc_library() -> str | None:
    """The file name of the system's jemalloc (the dynamic loader finds it by name), or None."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.util.find_library("jemalloc")


def worker_allocator(env: dict[str, str] | None = None) -> str:
    """The allocator a CPU run's worker started from this process will use."""
    env = os.environ if env is None else env
    if JEMALLOC in env.get("LD_PRELOAD", ""):
        return JEMALLOC
    if env.get(ENV_CHOICE, "").strip().lower() == "system" or jemalloc_library() is None:
        return GLIBC
    return JEMALLOC


def allocator_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with jemalloc preloaded when a CPU run's worker should have it (nothing else changes)."""
    if worker_allocator(env) != JEMALLOC or JEMALLOC in env.get("LD_PRELOAD", ""):
        return env
    preload = " ".join(filter(None, [jemalloc_library(), env.get("LD_PRELOAD", "")]))
    return {**env, "LD_PRELOAD": preload}


def running_allocator() -> str:
    """The allocator of this process: jemalloc when its library is mapped, else glibc's malloc."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return GLIBC
    return JEMALLOC if "libjemalloc" in maps else GLIBC
