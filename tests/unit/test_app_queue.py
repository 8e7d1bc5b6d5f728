"""The launched app's event queue is tuned for a server that shares its machine with training:
no per-event analytics summary, no millisecond wake-ups while idle."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("gradio")


def test_launch_tunes_the_queue(tmp_path, monkeypatch):
    from studio.ui import app
    from studio.web import server
    from tests.servers import free_port

    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    for name in ("GRADIO_ANALYTICS_CACHE_FREQUENCY", "GRADIO_ANALYTICS_MAX_EVENTS"):
        monkeypatch.setenv(name, "")  # recorded, so what launch sets is undone after the test
        monkeypatch.delenv(name)
    services = app.make_services(tmp_path / "ws")
    web = server.WebServer(services, port=free_port(), quiet=True).start()
    try:
        queue = web.blocks._queue
        assert queue.sleep_when_free >= server.QUEUE_IDLE_SLEEP_S
        assert queue.ANAYLTICS_CACHE_FREQUENCY >= 10**6 and queue.ANALYTICS_MAX_EVENTS == 1
        assert os.environ["GRADIO_ANALYTICS_MAX_EVENTS"] == "1"
    finally:
        web.close()
        services.jobs.shutdown()
