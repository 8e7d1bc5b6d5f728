"""The Ray executor: each run's worker is a job of a Ray cluster (its Jobs API).

The job's entrypoint is the normal worker command on the normal run folder, given by its
absolute path: the workspace must be on a filesystem every node mounts at the same path, so the
worker writes events, checkpoints and the model where the studio reads them. The first run sent
to a cluster checks that with a probe job (``ray_probe``) that reads, on every node, a token this
server has just written. The studio keeps its queue and sends the head of it only while some
node has room for it (the dashboard's per-node resource usage), so runs wait in the studio's
queue, in order, rather than in Ray's.

A Ray job's status is only a fallback: a worker writes its own final status in its events. A job
that ended without one was interrupted (a lost node, a killed worker), or failed when its worker
never started on the node (the reason and the last lines of the job's log say why).
"""

from __future__ import annotations

import json
import logging
import secrets
import shlex
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from studio.jobs.executors.base import RAY, Ending
from studio.jobs.executors.local import worker_command
from studio.jobs.store import SPAWN_GRACE_S, JobError

log = logging.getLogger("studio.jobs")

PYTHON = "python"
"""The Python that Ray's nodes run the worker with (the one Ray itself runs in, with the studio installed)."""
PROBE_TIMEOUT_S = 180.0
UNREACHABLE_LOST_S = 120.0
"""A cluster that does not answer for this long has lost the runs it held (they read interrupted)."""
LOG_TAIL_LINES = 15
LIVE = ("PENDING", "RUNNING")
HINT_START = ("every node needs the studio installed (pip install 'studio[ray]') in the Python that Ray runs, and the "
              "workspace mounted at the same path as on the studio's server")


class ClusterError(JobError):
    kind = "cluster"


def submission_id(record) -> str:
    """The Ray job id of a run's attempt: known before it is submitted, so a server that died
    between submitting it and recording it finds it again."""
    return f"studio-{record.id}-{record.attempts}"


def _status(value: Any) -> str:
    return str(getattr(value, "value", value)).upper()


class RayExecutor:
    name = RAY

    def __init__(self, address: str, workspace_root: Path, record: Callable[..., Any]):
        if not address:
            raise ClusterError("no Ray cluster is configured for this studio",
                               hint="an admin sets its address: studio settings set ray_address http://head:8265")
        try:
            import ray.job_submission  # noqa: F401 - imported here only: a studio without Ray never loads it
        except ImportError:
            raise ClusterError("the ray executor needs Ray installed on the studio's server",
                               hint="pip install 'studio[ray]'") from None
        self.address = self.normal_address(address)
        self.workspace_root = Path(workspace_root).resolve()
        self._record = record  # store.update(run_id, expect=ACTIVE, **values)
        self._client_obj = None
        self._probed = False
        self._pending: set[str] = set()
        self._unreachable_since: dict[str, float] = {}
        self._killed: set[str] = set()

    @staticmethod
    def normal_address(address: str) -> str:
        address = (address or "").strip().rstrip("/")
        return address if not address or "://" in address else f"http://{address}"

    # ---- the cluster -----------------------------------------------------------------------
    @property
    def client(self):
        from ray.job_submission import JobSubmissionClient

        if self._client_obj is None:
            try:
                self._client_obj = JobSubmissionClient(self.address)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ClusterError(f"the Ray cluster at {self.address} does not answer: {error}",
                                   hint="check ray_address (the dashboard's address, e.g. http://head:8265) and that "
                                        "the head node is up") from None
        return self._client_obj

    def nodes(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Per alive node: resource -> (used, total), from the dashboard."""
        try:
            with urllib.request.urlopen(f"{self.address}/api/cluster_status", timeout=10) as answer:
                data = json.loads(answer.read().decode("utf-8"))
        except (OSError, ValueError) as error:
            raise ClusterError(f"the Ray cluster at {self.address} does not say what it has free: {error}") from None
        report = (((data.get("data") or {}).get("clusterStatus") or {}).get("loadMetricsReport") or {})
        # Per node where the dashboard says it (Ray 2.x); else the whole cluster as if one node.
        by_node = report.get("usageByNode") or ({"cluster": report["usage"]} if report.get("usage") else {})
        return {node: {name: (float(v[0]), float(v[1])) for name, v in usage.items() if isinstance(v, list) and len(v) == 2}
                for node, usage in by_node.items()}

    @staticmethod
    def plan(gpus: int, nodes: dict) -> tuple[dict[str, float], int]:
        """What a run asks of the cluster: (what its job asks of one node, how many Ray Train
        workers it spreads over nodes, 0 for none).

        A CPU run takes a CPU; a GPU run its GPUs and a CPU on one node, under torchrun when it has
        several. On a cluster without GPUs a one-GPU run takes a CPU, as it does on a machine without
        one, and a run of N GPUs N CPU workers. A run asking more GPUs than any node has trains
        data-parallel across nodes with Ray Train (one GPU a worker)."""
        per_node = [usage.get("GPU", (0.0, 0.0))[1] for usage in nodes.values()] or [0.0]
        if gpus == 0 or (gpus == 1 and not any(per_node)):
            return {"CPU": 1.0}, 0
        if not any(per_node) or gpus > max(per_node):
            return {"CPU": 1.0, **({"GPU": 1.0} if any(per_node) else {})}, gpus
        return {"CPU": 1.0, "GPU": float(gpus)}, 0

    # ---- the executor contract ---------------------------------------------------------------
    def check(self, gpus: int) -> None:
        if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
            raise ClusterError(f"the number of GPUs must be a whole number >= 0, got {gpus!r}")
        if not (self._probed or self.probed_before()):
            self.probe()
        if gpus > 1:
            nodes = self.nodes()
            need, workers = self.plan(gpus, nodes)
            kind = "GPU" if "GPU" in need else "CPU"
            total = sum(usage.get(kind, (0, 0))[1] for usage in nodes.values())
            if gpus > total:
                raise ClusterError(f"the run asks for {gpus} {'GPUs' if kind == 'GPU' else 'workers'} but the Ray cluster "
                                   f"has {total:g} {kind}s; it could never start", hint=f"ask for at most {total:g}")

    def place(self, record, busy: set[str]) -> dict[str, Any] | None:
        # The dashboard counts a job's resources a few seconds after it starts; until Ray has started
        # what it was given, the next run waits here, in order. So at most one run waits in Ray's
        # own queue when the usage read was stale (Ray itself places it on a node with room).
        if self._pending:
            return None
        nodes = self.nodes()
        free = {node: {name: total - used for name, (used, total) in usage.items()} for node, usage in nodes.items()}
        need, workers = self.plan(record.gpus, nodes)
        if workers:  # Ray Train: a worker's share on as many nodes as have room, in all enough
            room = sum(int(min(node.get(k, 0.0) // v for k, v in need.items())) for node in free.values())
            return {"devices": []} if room >= workers else None
        if any(all(node.get(k, 0.0) >= v - 1e-9 for k, v in need.items()) for node in free.values()):
            return {"devices": []}
        return None

    def entrypoint(self, record, run_dir: Path, need: dict[str, float], workers: int) -> str:
        run_dir = run_dir.resolve()
        if workers:
            return shlex.join([PYTHON, "-m", "studio.jobs.executors.ray_train", str(run_dir), f"--workers={workers}"]
                              + (["--gpu"] if "GPU" in need else []) + (["--resume"] if record.resume else []))
        return shlex.join(worker_command(run_dir, int(need.get("GPU", 0)), record.resume, PYTHON))

    def launch(self, record, run_dir: Path) -> dict[str, Any]:
        job_id = submission_id(record)
        need, workers = self.plan(record.gpus, self.nodes())
        env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
               **{str(k): str(v) for k, v in (record.env or {}).items()}}
        # A Ray Train driver only coordinates: its workers ask for the CPUs and GPUs themselves.
        driver = {} if workers else need
        try:
            self.client.submit_job(entrypoint=self.entrypoint(record, run_dir, need, workers), submission_id=job_id,
                                   entrypoint_num_cpus=driver.get("CPU", 0), entrypoint_num_gpus=driver.get("GPU", 0),
                                   runtime_env={"env_vars": env}, metadata={"studio_run": record.id})
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterError(f"the Ray cluster at {self.address} refused the run's job: {error}") from None
        self._pending.add(job_id)
        log.info("run %s submitted to the Ray cluster at %s as job %s%s", record.id, self.address, job_id,
                 f" ({workers} Ray Train workers)" if workers else "")
        return {"job_id": job_id}

    def _job_status(self, record) -> str | None:
        """Ray's status of the run's job; None when Ray has no such job. Raises ``ConnectionError``."""
        job_id = record.job_id or submission_id(record)
        try:
            status = _status(self.client.get_job_status(job_id))
        except RuntimeError as error:
            if "does not exist" in str(error) or "404" in str(error):
                return None
            raise ConnectionError(str(error)) from None
        if not record.job_id:  # submitted by a server that died before it could record it
            self._record(record.id, job_id=job_id)
            record.job_id = job_id
        return status

    def alive(self, record, summary) -> bool:
        try:
            status = self._job_status(record)
        except (ConnectionError, ClusterError, OSError) as error:
            since = self._unreachable_since.setdefault(record.id, time.time())
            log.warning("the Ray cluster does not answer about run %s: %s", record.id, error)
            return time.time() - since < UNREACHABLE_LOST_S
        self._unreachable_since.pop(record.id, None)
        if status is None:
            return not record.job_id and time.time() - (record.started or 0) < SPAWN_GRACE_S
        if status != "PENDING":
            self._pending.discard(record.job_id)
        if status == "RUNNING" and not record.node:
            node = self._node(record.job_id)
            if node:
                self._record(record.id, node=node)
                record.node = node
        return status in LIVE

    def _node(self, job_id: str) -> str | None:
        """Where a job's worker runs: the node's address and the start of its id (several nodes
        may share an address)."""
        try:
            info = self.client.get_job_info(job_id)
        except (ConnectionError, RuntimeError):
            return None
        node_id = getattr(info, "driver_node_id", None) or ""
        agent = getattr(info, "driver_agent_http_address", None) or ""
        host = agent.split("://")[-1].rsplit(":", 1)[0] if agent else ""
        return f"{host} ({node_id[:8]})" if host and node_id else (host or node_id[:8] or None)

    def kill(self, record, summary) -> None:
        self._killed.add(record.id)
        job_id = record.job_id or submission_id(record)
        log.warning("stopping the Ray job %s of run %s", job_id, record.id)
        try:
            self.client.stop_job(job_id)
        except (ConnectionError, RuntimeError, ClusterError) as error:
            log.warning("could not stop the Ray job %s: %s", job_id, error)

    def finish(self, record, summary) -> Ending:
        killed = record.id in self._killed
        self._killed.discard(record.id)
        self._unreachable_since.pop(record.id, None)
        job_id = record.job_id or submission_id(record)
        self._pending.discard(job_id)
        try:
            info = self.client.get_job_info(job_id)
            logs = self.client.get_job_logs(job_id) or ""
        except (ConnectionError, RuntimeError, ClusterError) as error:
            return Ending(killed=killed, message=f"the Ray job {job_id} is gone ({error}): its node or the cluster was lost",
                          hint="resume the run: it continues from its last complete checkpoint")
        self._keep_log(record, logs)
        tail = "\n".join(logs.rstrip().splitlines()[-LOG_TAIL_LINES:])
        reason = (getattr(info, "message", None) or "").split(", last available logs")[0].strip()
        message = f"Ray job {job_id}: {_status(info.status).lower()}" + (f" ({reason})" if reason else "")
        if tail:
            message += f"\nlast lines of its log:\n{tail}"
        exit_code = getattr(info, "driver_exit_code", None)
        started = summary.status is not None or summary.worker_pid is not None
        if _status(info.status) == "FAILED" and not started and not killed:
            return Ending(exit_code=exit_code, status="failed", message=f"the worker could not start on the cluster. {message}",
                          hint=HINT_START)
        return Ending(exit_code=-9 if killed else exit_code, message=message, killed=killed,
                      hint=None if killed else "resume the run: it continues from its last complete checkpoint")

    def busy(self, record, run_dir: Path) -> bool:
        if not record.job_id:
            return False
        try:
            return self._job_status(record) in LIVE
        except (ConnectionError, ClusterError, OSError):
            return False

    def collect(self, is_active) -> None:
        pass

    def _keep_log(self, record, logs: str) -> None:
        """The job's log goes to the run's worker.log, as a local worker's output does."""
        if not logs:
            return
        try:
            with open(Path(record.run_dir) / "worker.log", "a", encoding="utf-8") as out:
                out.write(logs if logs.endswith("\n") else logs + "\n")
        except OSError:
            pass

    # ---- the shared filesystem -----------------------------------------------------------------
    @property
    def _probe_file(self) -> Path:
        return self.workspace_root / ".ray-probe" / "checked.json"

    def probed_before(self) -> bool:
        """Whether a probe of this cluster passed for this workspace (by this server or an earlier one)."""
        try:
            self._probed = json.loads(self._probe_file.read_text(encoding="utf-8")).get("address") == self.address
        except (OSError, ValueError, AttributeError):
            self._probed = False
        return self._probed

    def probe_command(self, token_path: Path, token: str) -> str:
        return shlex.join([PYTHON, "-m", "studio.jobs.executors.ray_probe", str(token_path), token])

    def probe(self) -> None:
        """Check, once, that every node of the cluster sees the workspace at the same path: a probe
        job reads a token this server has just written, on each node (refused otherwise)."""
        try:
            self._probe()
        except (ConnectionError, RuntimeError) as error:  # the cluster went away meanwhile
            raise ClusterError(f"the Ray cluster at {self.address} stopped answering during the probe job: {error}") from None

    def _probe(self) -> None:
        from ray.job_submission import JobStatus

        folder = self.workspace_root / ".ray-probe"
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        path = folder / f"{token}.token"
        path.write_text(token, encoding="utf-8")
        job_id = f"studio-probe-{token[:12]}"
        try:
            try:
                self.client.submit_job(entrypoint=self.probe_command(path, token), submission_id=job_id,
                                       runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}})
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ClusterError(f"the Ray cluster at {self.address} refused the probe job: {error}") from None
            deadline = time.time() + PROBE_TIMEOUT_S
            status = None
            while time.time() < deadline:
                status = self.client.get_job_status(job_id)
                if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                    break
                time.sleep(0.5)
            else:
                self.client.stop_job(job_id)
                raise ClusterError(f"the probe job on the Ray cluster at {self.address} did not finish within "
                                   f"{PROBE_TIMEOUT_S:.0f} s", hint="check that the cluster has a free CPU")
            if status != JobStatus.SUCCEEDED:
                logs = (self.client.get_job_logs(job_id) or "").strip().splitlines()
                said = next((line for line in reversed(logs) if line.startswith("studio-probe:")), None)
                raise ClusterError(
                    f"the Ray cluster's nodes do not see this studio's workspace at {self.workspace_root} "
                    f"({said.removeprefix('studio-probe:').strip() if said else 'the probe job failed: ' + ' | '.join(logs[-3:])})",
                    hint="mount the workspace on every node at the same path (a shared filesystem: NFS, CephFS, ...), "
                         "and install the studio there (" + HINT_START + ")")
            self._probed = True
            self._probe_file.write_text(json.dumps({"address": self.address, "at": time.time()}), encoding="utf-8")
        finally:
            path.unlink(missing_ok=True)
