"""One run across several machines: ``python -m studio.jobs.executors.ray_train RUN_DIR --workers N [--gpu] [--resume]``.

The entrypoint of a Ray job whose run asks for more GPUs than one node has (or, on a cluster
without GPUs, for more than one: N CPU workers). Ray Train's ``TorchTrainer`` starts N workers
across the nodes and joins them in one torch process group (NCCL on GPUs, gloo on CPUs), setting
``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` as torchrun does; each worker runs the same worker code on
the same run folder, and only rank 0 writes events, the model and the metrics, as under torchrun.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def train_on_worker(config: dict) -> None:
    """One Ray Train worker: the normal worker on the run folder (its rank from the environment)."""
    from studio.training.worker import run

    code = run(Path(config["run_dir"]), resume=config["resume"])
    if code:
        raise RuntimeError(f"the worker ended with exit code {code}; its events say why")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.jobs.executors.ray_train")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--gpu", action="store_true", help="one GPU a worker (NCCL); else one CPU a worker (gloo)")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    ray.init(logging_level="WARNING")
    run_dir = args.run_dir.resolve()
    trainer = TorchTrainer(
        train_on_worker,
        train_loop_config={"run_dir": str(run_dir), "resume": args.resume},
        scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=args.gpu,
                                     resources_per_worker={"CPU": 1, **({"GPU": 1} if args.gpu else {})}),
        torch_config=TorchConfig(backend="nccl" if args.gpu else "gloo"),
        # A failed worker fails the run (the studio resumes it from its checkpoint, not Ray);
        # Ray Train's own files go beside the run's, on the shared filesystem.
        run_config=RunConfig(name="ray-train", storage_path=str(run_dir / ".ray-train"),
                             failure_config=FailureConfig(max_failures=0)),
    )
    trainer.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
