"""A signed-in member attacks a running studio through the Data tab: a few kilobytes of Parquet
that decode to gigabytes, and more uploads than their quota. The server refuses both with a
message that says why, and its memory stays where it was."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.servers import free_port, start_server, stop, wait_until_up

PASSWORDS = {"root": "root-password-1", "alice": "alice-password-1"}
QUOTA_MB = 1


def peak_rss_mib(pid: int) -> float:
    """The process's highest resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's memory")
    from studio.settings import SettingsStore
    from studio.users import UserStore
    from studio.workspace import Workspace

    root = tmp_path_factory.mktemp("limited")
    workspace = Workspace.at(root / "workspace").root
    users = UserStore(workspace)
    users.add("root", PASSWORDS["root"], "admin")
    users.add("alice", PASSWORDS["alice"], "member")
    SettingsStore(workspace).update(by="root", upload_quota_mb=str(QUOTA_MB))
    port = free_port()
    log = root / "server.log"
    process = start_server(workspace, port, log, "--max-upload-mb", "2")
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url + "/", log)
    yield {"url": url, "workspace": workspace, "process": process, "root": root, "log": log}
    stop(process)


def client(limited, name: str):
    from gradio_client import Client

    return Client(limited["url"] + "/", auth=(name, PASSWORDS[name]), verbose=False, download_files=False)


def upload(alice, path: Path, timeout: float = 120) -> str:
    """The Data tab's answer to an upload (its message and preview), as text."""
    from gradio_client import handle_file

    job = alice.submit(handle_file(str(path)), None, None, None, api_name="/data_upload")
    return json.dumps(job.result(timeout=timeout), ensure_ascii=False)


def test_a_parquet_bomb_is_refused_without_the_server_growing(limited):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # 600,000 copies of one 2,000-character row: about 130 KB on disk, 1.2 GB of text decoded
    # (the server would hold it twice, as Arrow and as pandas).
    text = ("lorem ipsum dolor sit amet " * 80)[:2000]
    path = limited["root"] / "bomb.parquet"
    pq.write_table(pa.table({"text": [text] * 600_000, "label": ["pos"] * 600_000}), path,
                   compression="zstd", compression_level=19, row_group_size=600_000)
    assert path.stat().st_size < 200_000

    alice = client(limited, "alice")
    before = peak_rss_mib(limited["process"].pid)
    started = time.monotonic()
    answer = upload(alice, path, timeout=60)  # read in full, the file takes minutes to check
    took = time.monotonic() - started
    grew = peak_rss_mib(limited["process"].pid) - before
    assert "bomb.parquet" in answer and "decompression bomb" in answer and "max_decoded_mb" in answer, answer[:2000]
    assert grew < 250, f"the server's peak memory grew by {grew:.0f} MiB reading a {path.stat().st_size:,}-byte file"
    assert took < 30, f"the refusal took {took:.1f} s"
    # The upload itself is kept in Alice's own uploads (and counts against her quota).
    assert list((limited["workspace"] / "uploads" / "alice").rglob("bomb.parquet"))


def test_uploads_past_the_users_quota_are_refused_and_not_stored(limited):
    alice = client(limited, "alice")
    first = limited["root"] / "first.csv"
    first.write_bytes(b"text,label\n" + b"good movie,pos\n" * 40_000)  # 600 KB
    second = limited["root"] / "second.csv"
    second.write_bytes(b"text,label\n" + b"bad movie,neg\n" * 40_000)
    assert "upload quota" not in upload(alice, first)
    answer = upload(alice, second)
    assert "upload quota" in answer and f"{QUOTA_MB} MB" in answer and "upload_quota_mb" in answer, answer[:2000]
    stored = list((limited["workspace"] / "uploads").rglob("*.csv"))
    assert [p.name for p in stored] == ["first.csv"], stored
