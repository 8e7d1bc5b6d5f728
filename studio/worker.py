"""Entry point of a training process: ``python -m studio.worker <run_dir> [--resume]``."""

import sys

from studio.training.worker import main

if __name__ == "__main__":
    sys.exit(main())
