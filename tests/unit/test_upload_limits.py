"""What one data file may become in memory (rows, decoded size, decompression bombs) and what one
user may keep uploaded (quota, cleanup of old uploads nothing uses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.data.readers import read_limits, read_table
from studio.data.readers.limits import BOMB_RATIO, MIB
from studio.data.uploads import KEEP_DAYS, UploadQuotaExceeded, UploadStore
from studio.errors import DataError
from studio.settings import Settings, SettingsStore
from tests.conftest import REPO

DAY = 86_400


def bomb(path: Path, rows: int = 300_000, width: int = 2_000, dictionary: bool = True) -> Path:
    """A few kilobytes of zstd Parquet holding ``rows`` copies of one ``width``-character row."""
    text = ("lorem ipsum dolor sit amet " * (width // 27 + 1))[:width]
    table = pa.table({"text": pa.array([text] * rows), "label": pa.array(["pos"] * rows)})
    pq.write_table(table, path, compression="zstd", compression_level=19 if dictionary else 1, row_group_size=rows, use_dictionary=dictionary)
    return path


# ---- Parquet -------------------------------------------------------------------------------------
def test_a_parquet_file_with_too_many_rows_is_refused_from_its_metadata(tmp_path):
    path = bomb(tmp_path / "many.parquet")
    assert path.stat().st_size < 100_000
    with pytest.raises(DataError) as refused:
        read_table(path, max_rows=100_000)
    text = str(refused.value)
    for fragment in ("many.parquet", "300,000 rows", "metadata", "100,000 rows allowed", "max_rows", "studio settings set"):
        assert fragment in text, (fragment, text)


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary-encoded", "plain"])
def test_a_parquet_file_past_the_decoded_size_limit_is_refused_while_reading(tmp_path, dictionary):
    path = bomb(tmp_path / "wide.parquet", rows=20_000, dictionary=dictionary)  # about 40 MB of text
    with pytest.raises(DataError) as refused:
        read_table(path, max_rows=None, max_decoded_bytes=8 * MIB)
    text = str(refused.value)
    # Plain values are all in the pages, whose sizes the metadata gives: refused before decoding.
    # Dictionary-encoded ones decode to far more than the metadata's size: refused while reading.
    measured = "reading stopped after" if dictionary else "as its Parquet metadata says"
    for fragment in ("wide.parquet", "more than", "8.0 MiB", "once decoded", measured, "max_decoded_mb"):
        assert fragment in text, (fragment, text)
    # Within a limit that fits, the same file reads, every row as written.
    table = read_table(path, max_rows=None, max_decoded_bytes=None)
    assert len(table.df) == 20_000 and table.df["text"].str.len().eq(2_000).all()


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary-encoded", "plain"])
def test_a_parquet_decompression_bomb_is_refused_long_before_the_decoded_size_limit(tmp_path, dictionary):
    # 300,000 rows of 2,000 characters: 600 MB from a few KB (about 1 MB without a dictionary)
    path = bomb(tmp_path / "bomb.parquet", dictionary=dictionary)
    with pytest.raises(DataError) as refused:
        read_table(path)  # the defaults: 2,000,000 rows, 1 GiB decoded
    text = str(refused.value)
    for fragment in ("bomb.parquet", "on disk but decodes to more than", f"over {BOMB_RATIO} times its size", "decompression bomb",
                     "max_decoded_mb"):
        assert fragment in text, (fragment, text)


@pytest.mark.parametrize("values", [pa.array([["token" * 40] * 1_000] * 2_000), pa.array([[7] * 100_000] * 200, type=pa.list_(pa.int64()))],
                         ids=["lists-of-text", "lists-of-numbers"])
def test_a_parquet_bomb_in_lists_is_refused_too(tmp_path, values):
    """A row can hold a list of a hundred thousand values that take a few bytes on disk."""
    path = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"tokens": values}), path, compression="zstd", compression_level=19)
    assert path.stat().st_size < 10_000
    with pytest.raises(DataError, match="decompression bomb"):
        read_table(path)


def test_reading_a_bomb_stops_early_so_memory_stays_near_the_limit(tmp_path):
    """The file expands to about 1.2 GB; read in a fresh process, the reader's peak memory (the
    process's, past the imports) stays a small fraction of that."""
    path = bomb(tmp_path / "big.parquet", rows=600_000, width=2_000)
    code = (
        "import resource, sys\n"
        "import pandas, pyarrow, pyarrow.parquet, pyarrow.compute\n"
        "from studio.data.readers import read_table\n"
        "from studio.errors import DataError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read_table(sys.argv[1], max_rows=None)\n"
        "    print('read')\n"
        "except DataError as error:\n"
        "    print('refused', str(error).splitlines()[0])\n"
        "print('grew_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused" in result.stdout, result.stdout
    grew_mib = int(result.stdout.split("grew_kib")[1]) / 1024
    assert grew_mib < 300, f"reading the bomb grew the process by {grew_mib:.0f} MiB:\n{result.stdout}"


def test_parquet_read_in_batches_is_the_same_as_read_whole(tmp_path):
    """Nested values, ints with gaps, blank names, several row groups: as pyarrow reads the file."""
    rows = 3_000
    table = pa.table({
        "text": [f"row {i}" if i % 7 else None for i in range(rows)],
        "label": pa.array([i % 3 if i % 5 else None for i in range(rows)], type=pa.int64()),
        "tokens": [["a", "b"] if i % 2 else [] for i in range(rows)],
        "entities": [[{"start": 0, "end": 1, "label": "X"}] if i % 3 else None for i in range(rows)],
        " ": ["x"] * rows,
    })
    path = tmp_path / "mixed.parquet"
    pq.write_table(table, path, row_group_size=700)
    read = read_table(path).df
    assert list(read.columns) == ["text", "label", "tokens", "entities", "column_5"]
    assert [None if pd.isna(v) else v for v in read["text"].tolist()[:8]] == [None, "row 1", "row 2", "row 3", "row 4", "row 5", "row 6", None]
    assert read["label"].tolist()[:6] == [None, 1, 2, 0, 1, None]
    assert read["tokens"].tolist()[:2] == [[], ["a", "b"]]
    assert read["entities"].tolist()[:2] == [None, [{"start": 0, "end": 1, "label": "X"}]]
    assert len(read) == rows


# ---- text files ---------------------------------------------------------------------------------
def write_rows(path: Path, rows: int) -> Path:
    records = [{"text": f"example {i}", "label": "pos" if i % 2 else "neg"} for i in range(rows)]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        sep = "\t" if path.suffix == ".tsv" else ","
        path.write_text(f"text{sep}label\n" + "".join(f"{r['text']}{sep}{r['label']}\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["rows.csv", "rows.tsv", "rows.jsonl", "rows.json"])
def test_the_row_limit_applies_to_text_files(tmp_path, name):
    path = write_rows(tmp_path / name, 50)
    assert len(read_table(path, max_rows=50).df) == 50
    with pytest.raises(DataError) as refused:
        read_table(path, max_rows=49)
    text = str(refused.value)
    for fragment in (name, "more than 49 rows", "split it into files of at most 49 rows", "studio settings set max_rows"):
        assert fragment in text, (fragment, text)


def test_reading_a_long_text_file_stops_at_the_row_limit(tmp_path):
    path = write_rows(tmp_path / "long.jsonl", 200_000)
    started = time.perf_counter()
    with pytest.raises(DataError, match="more than 1,000 rows"):
        read_table(path, max_rows=1_000)
    assert time.perf_counter() - started < 0.5  # stopped at row 1,001, not after reading 200,000


@pytest.mark.parametrize("name", ["big.csv", "big.jsonl"])
def test_a_text_file_past_the_decoded_size_limit_is_refused(tmp_path, name):
    path = write_rows(tmp_path / name, 20_000)
    with pytest.raises(DataError) as refused:
        read_table(path, max_decoded_bytes=path.stat().st_size - 1)
    assert "its text alone is more than" in str(refused.value) and "max_decoded_mb" in str(refused.value)
    # Small cells take more room as Python objects than as text: that counts too.
    with pytest.raises(DataError, match="once decoded"):
        read_table(path, max_decoded_bytes=path.stat().st_size + 100_000)
    assert len(read_table(path, max_decoded_bytes=64 * MIB).df) == 20_000


def test_conll_files_count_sentences_as_rows(tmp_path):
    from studio.tasks import get_task

    path = tmp_path / "ner.conll"
    path.write_text("".join(f"Word{i}\tB-PER\nsaid\tO\n\n" for i in range(30)), encoding="utf-8")
    task = get_task("ner")
    assert len(task.read_file(path, max_rows=30).df) == 30
    with pytest.raises(DataError, match="more than 29 rows"):
        task.read_file(path, max_rows=29)


def test_limits_come_from_the_workspace_settings_and_reach_the_data_checks(tmp_path):
    from studio.config import RunConfig
    from studio.data.loading import load_task_data
    from studio.tasks import get_task

    assert read_limits(None) == {"max_rows": 2_000_000, "max_decoded_bytes": 1024 * MIB}
    settings = SettingsStore(tmp_path).update(max_rows="40", max_decoded_mb="none")
    assert read_limits(settings) == {"max_rows": 40, "max_decoded_bytes": None}
    path = write_rows(tmp_path / "train.csv", 50)
    config = RunConfig.from_dict({"task": {"name": "classification"}, "data": {"train": str(path)}})
    with pytest.raises(DataError, match="more than 40 rows"):
        load_task_data(config, get_task("classification"), limits=read_limits(settings))
    assert len(load_task_data(config, get_task("classification")).splits["train"]) > 0  # the defaults


# ---- stored uploads -----------------------------------------------------------------------------
def upload(tmp_path: Path, name: str, size: int, fill: bytes = b"x") -> Path:
    folder = tmp_path / "browser" / str(time.time_ns())
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(b"text,label\n" + fill * size)
    return path


def age(folder: Path, days: float) -> None:
    then = time.time() - days * DAY
    for path in (folder, *folder.rglob("*")):
        os.utime(path, (then, then))


def test_uploads_are_kept_per_user_once_per_content(tmp_path):
    store = UploadStore(tmp_path / "ws")
    source = upload(tmp_path, "reviews.csv", 100)
    kept = store.keep(source, "alice")
    assert kept.parent.parent == store.root / "alice" and kept.name == "reviews.csv"
    assert store.keep(source, "alice") == kept
    assert store.keep(source, None).parent.parent == store.root / "_"
    assert store.keep(upload(tmp_path, ".hidden.csv", 10), "alice").name == "_.hidden.csv"  # never hidden, never '..'


def test_the_upload_quota_refuses_what_would_pass_it(tmp_path):
    store = UploadStore(tmp_path / "ws")
    store.keep(upload(tmp_path, "first.csv", 700 * 1024), "alice", quota_mb=1)
    with pytest.raises(UploadQuotaExceeded) as refused:
        store.keep(upload(tmp_path, "second.csv", 700 * 1024, b"y"), "alice", quota_mb=1)
    text = str(refused.value)
    for fragment in ("second.csv (700.0 KiB)", "already take 700.0 KiB", "of the 1 MB", "upload quota",
                     f"deleted {KEEP_DAYS} days", "studio settings set upload_quota_mb"):
        assert fragment in text, (fragment, text)
    assert not list((store.root / "alice").rglob("second.csv"))
    # Another user has their own quota; the same file again takes no more room.
    store.keep(upload(tmp_path, "second.csv", 700 * 1024, b"y"), "bob", quota_mb=1)
    store.keep(upload(tmp_path, "first.csv", 700 * 1024), "alice", quota_mb=1)


def test_the_quota_makes_room_from_the_users_old_unused_uploads(tmp_path):
    store = UploadStore(tmp_path / "ws")
    old = store.keep(upload(tmp_path, "old.csv", 700 * 1024), "alice", quota_mb=1)
    age(old.parent, 2)
    new = store.keep(upload(tmp_path, "new.csv", 700 * 1024, b"y"), "alice", quota_mb=1)
    assert new.exists() and not old.exists()


def run_config(workspace: Path, run: str, text: str) -> None:
    folder = workspace / "runs" / run
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(text, encoding="utf-8")


def test_cleanup_keeps_what_runs_use_and_recent_uploads_and_deletes_the_rest(tmp_path):
    workspace = tmp_path / "ws"
    store = UploadStore(workspace)
    used = store.keep(upload(tmp_path, "used.csv", 10, b"a"), "alice")
    used_val = store.keep(upload(tmp_path, "val.csv", 10, b"v"), "bob")
    staged = store.keep(upload(tmp_path, "staged.csv", 10, b"s"), "alice")
    unreadable = store.keep(upload(tmp_path, "odd.csv", 10, b"o"), "alice")
    unused = store.keep(upload(tmp_path, "unused.csv", 10, b"b"), "alice")
    recent = store.keep(upload(tmp_path, "recent.csv", 10, b"c"), "alice")
    only = store.keep(upload(tmp_path, "only.csv", 10, b"d"), "carol")
    # Uploads from before they were per user: uploads/<sha16>/<name>.
    legacy_used = store.root / "0123456789abcdef" / "legacy.csv"
    legacy_unused = store.root / "fedcba9876543210" / "gone.csv"
    for path in (legacy_used, legacy_unused):
        path.parent.mkdir(parents=True)
        path.write_text("text,label\nx,y\n")
    run_config(workspace, "run-1", f"task:\n  name: text_classification\ndata:\n  train: {used}\n  validation: {used_val}\n")
    run_config(workspace, ".staging-run-2", f"data:\n  train: '{staged}'\n")
    run_config(workspace, "run-3", f"data: [unclosed\n  train: {unreadable}\n")
    run_config(workspace, "run-4", f"data:\n  train: {legacy_used}\n")
    for path in (used, used_val, staged, unreadable, unused, only, legacy_used, legacy_unused):
        age(path.parent, KEEP_DAYS + 1)

    deleted = store.clean()
    assert sorted(deleted) == sorted([unused.parent, only.parent, legacy_unused.parent])
    for path in (used, used_val, staged, unreadable, recent, legacy_used):
        assert path.exists(), path
    for path in (unused, only, legacy_unused):
        assert not path.parent.exists(), path
    assert not (store.root / "carol").exists()  # an owner folder left empty goes too
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]


def test_services_keep_uploads_per_user_within_the_workspace_quota(tmp_path):
    from studio.ui.services import Services
    from studio.workspace import Workspace

    workspace = Workspace.at(tmp_path / "ws")
    settings = Settings(upload_quota_mb=1)
    services = Services(workspace=workspace, jobs=SimpleNamespace(settings=lambda: settings), models=None)
    kept = services.keep_upload(upload(tmp_path, "a.csv", 600 * 1024), "alice")
    assert kept.is_relative_to(workspace.root / "uploads" / "alice")
    with pytest.raises(UploadQuotaExceeded, match="1 MB"):
        services.keep_upload(upload(tmp_path, "b.csv", 600 * 1024, b"y"), "alice")
    age(kept.parent, KEEP_DAYS + 1)
    assert services.clean_uploads() == [kept.parent]


# ---- the Data tab -----------------------------------------------------------------------------------
@pytest.fixture
def app_services(tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.setenv("STUDIO_FAKE_GPUS", "0")
    from studio.ui.app import make_services

    made = make_services(tmp_path / "ws", [])
    yield made
    made.jobs.shutdown()


def test_the_data_tab_stores_uploads_per_user_and_reads_within_the_limits(app_services, tmp_path):
    from studio.ui.app import build_app
    from studio.ui.data_state import empty_state
    from studio.ui.data_tab import analyze

    app = build_app(app_services)
    load = next(fn.fn for fn in app.fns.values() if fn.api_name == "data_upload")
    alice = SimpleNamespace(username="alice")
    path = write_rows(tmp_path / "reviews.csv", 60)

    state, _summary, messages, *_ = load(str(path), None, None, None, empty_state(), alice)
    assert Path(state.path).is_relative_to(app_services.workspace.root / "uploads" / "alice")
    assert state.ok, messages

    SettingsStore(app_services.workspace.root).update(max_rows="50", upload_quota_mb="1")
    state, _summary, messages, *_ = load(str(path), None, None, None, empty_state(), alice)
    assert "more than 50 rows" in messages and "max_rows" in messages
    assert "more than 50 rows" in (analyze(state, "classification").error or "")

    big = upload(tmp_path, "big.csv", 2 * 1024 * 1024)
    state, _summary, messages, *_ = load(str(big), None, None, None, empty_state(), alice)
    assert "upload quota" in messages and state.path is None
    assert not list((app_services.workspace.root / "uploads").rglob("big.csv"))
