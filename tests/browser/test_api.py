"""The studio from a script: every action is a named Gradio endpoint that gradio_client can call."""

from __future__ import annotations

import pytest

gradio_client = pytest.importorskip("gradio_client")


def test_gradio_client_lists_and_calls_named_endpoints(server):
    client = gradio_client.Client(server["url"], verbose=False)
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    for name in ("/data_upload", "/data_sample", "/data_check", "/data_save", "/train_launch", "/train_poll",
                 "/train_cancel", "/train_resume", "/runs_list", "/eval_load",
                 "/eval_compare", "/playground_predict"):
        assert name in names, name

    # A sample dataset, checked in this client's own session, then saved by name.
    summary = client.predict("sentiment_en.csv", None, None, api_name="/data_sample")
    assert "sentiment_en.csv" in str(summary).replace("\\", "")  # Markdown: the file name's marks escaped
    saved = client.predict("sentiment-sample", api_name="/data_save")
    assert "saved dataset 'sentiment-sample'" in str(saved)
    assert (server["workspace"] / "datasets" / "sentiment-sample" / "meta.json").exists()

    table, *_ = client.predict([], "", "", "", [], None, None, None, api_name="/runs_list")
    assert set(table["headers"]) >= {"run", "status", "metric"}
