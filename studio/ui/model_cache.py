"""Finished runs' models loaded for the playground and the evaluation tab, shared by all browsers.

Loading a model costs seconds, so loaded ones are kept; the least recently used is evicted when
more than ``max_models`` are held or the machine runs low on free memory. Two browsers asking for
the same model at once load it once.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("studio.ui")


def _free_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


class ModelCache:
    def __init__(self, max_models: int = 3, min_free_bytes: int = 1 << 30,
                 loader: Callable[[Path], Any] | None = None, free_bytes: Callable[[], int] = _free_bytes):
        self.max_models = max(1, max_models)
        self.min_free_bytes = min_free_bytes
        self._loader = loader or _load_trained
        self._free_bytes = free_bytes
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str, load: Callable[[], Any] | None = None) -> Any:
        """The model stored under ``key`` (a run folder, or a run folder + ':base'), loaded once."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            with self._lock:
                evicted = self._make_room(incoming=1)
            if evicted:
                gc.collect()
            try:
                model = load() if load is not None else self._loader(Path(key))
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._models[key] = model
                self._make_room(incoming=0)
            return model

    def drop(self, prefix: str) -> None:
        """Forget models of a run (deleted or retrained)."""
        with self._lock:
            for key in [k for k in self._models if k.startswith(prefix)]:
                del self._models[key]
        gc.collect()

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def _make_room(self, incoming: int) -> bool:
        """Evict least recently used models (call with the lock held); True if any went. After a
        load (``incoming=0``) the model just loaded is kept whatever the memory says."""
        evicted = False
        keep = 0 if incoming else 1
        while len(self._models) > keep and (len(self._models) + incoming > self.max_models or self._free_bytes() < self.min_free_bytes):
            key, _ = self._models.popitem(last=False)
            log.info("model cache: evicted %s", key)
            evicted = True
        return evicted


def _load_trained(run_dir: Path) -> Any:
    from studio.inference.loading import load_trained

    return load_trained(run_dir, device="cpu")
