"""The probe job the Ray executor sends once to a cluster: ``python -m studio.jobs.executors.ray_probe PATH TOKEN``.

It runs as a Ray job and reads, on every alive node, the token file the studio's server has just
written into its workspace. Exit 0 when every node read the token; else it prints which nodes
could not (a line starting ``studio-probe:``) and exits 3.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path


def read_token(path: str, token: str) -> str | None:
    """None when ``path`` holds ``token`` on this node, else what went wrong."""
    try:
        return None if Path(path).read_text(encoding="utf-8").strip() == token else f"{path} holds another token"
    except OSError as error:
        return f"{path}: {error.strerror or error}"


def main(argv: list[str] | None = None) -> int:
    path, token = (argv if argv is not None else sys.argv[1:])[:2]
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(logging_level="WARNING", log_to_driver=False)
    nodes = [node for node in ray.nodes() if node.get("Alive")]

    @ray.remote(num_cpus=0)
    def on_node() -> tuple[str, str | None]:
        return socket.gethostname(), read_token(path, token)

    refs = [on_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote()
            for node in nodes]
    problems = []
    for node, ref in zip(nodes, refs):
        host, problem = ray.get(ref, timeout=120)
        if problem:
            problems.append(f"node {node.get('NodeManagerAddress', host)} ({node['NodeID'][:8]}): {problem}")
    if problems:
        print("studio-probe: " + "; ".join(problems), flush=True)
        return 3
    print(f"studio-probe: {len(nodes)} node(s) see the workspace", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
