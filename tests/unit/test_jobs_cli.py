"""``studio runs ...`` and ``studio queue`` (no run is started: nothing schedules here)."""

from __future__ import annotations

import json

from studio.cli import main
from tests.conftest import toy_sentiment_rows, write_csv


def test_runs_and_queue_commands(tiny_encoder, tmp_path, capsys):
    data = write_csv(tmp_path / "reviews.csv", toy_sentiment_rows(40))
    config = tmp_path / "run.yaml"
    config.write_text(f"name: cli\ndata:\n  train: {data}\nmodel:\n  backbone: {tiny_encoder}\n"
                      "training:\n  epochs: 1\n  batch_size: 4\n")
    ws = ["--workspace", str(tmp_path / "ws")]

    ids = []
    for owner in ("ann", "bo"):
        assert main(ws + ["runs", "submit", str(config), "--owner", owner]) == 0
        ids.append(capsys.readouterr().out.split()[1])
    assert main(ws + ["runs", "submit", str(config), "--gpus", "2"]) == 2
    assert "asks for 2 GPUs" in capsys.readouterr().err

    assert main(ws + ["queue", "--up", ids[1]]) == 0
    out = capsys.readouterr().out
    assert f"{ids[1]} is now at position 1" in out
    assert out.index(ids[1], out.index("#")) < out.index(ids[0], out.index("#"))

    assert main(ws + ["runs", "list", "--owner", "ann", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [ids[0]] and listed[0]["position"] == 2

    assert main(ws + ["runs", "cancel", ids[0]]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert main(ws + ["runs", "show", ids[0], "--events", "5"]) == 0
    out = capsys.readouterr().out
    assert "status: cancelled" in out and '"status": "queued"' in out and "disk:" in out

    assert main(ws + ["runs", "resume", ids[0]]) == 0
    assert "position 2, resumes from the start" in capsys.readouterr().out
    assert main(ws + ["runs", "resume", ids[0]]) == 2
    assert "only interrupted, failed, cancelled runs can be resumed" in capsys.readouterr().err

    (tmp_path / "ws" / "studio.db").unlink()  # lose the index: the run folders still tell everything
    assert main(ws + ["runs", "reindex"]) == 0
    assert "indexed 2 run(s): 2 queued" in capsys.readouterr().out
    assert main(ws + ["queue"]) == 0
    out = capsys.readouterr().out
    assert out.index(ids[1]) < out.index(ids[0])  # queued first (by its events), first again

    assert main(ws + ["runs", "delete", ids[1], "--yes"]) == 0
    assert not (tmp_path / "ws" / "runs" / ids[1]).exists()
    capsys.readouterr()
    assert main(ws + ["runs", "show", ids[1]]) == 2
    assert "no run" in capsys.readouterr().err
