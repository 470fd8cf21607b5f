"""One enricher worker process, as started by `WorkerPool` (settings come through the environment)."""

from __future__ import annotations

import os
import sys

from pipelines.workers.enricher import run_worker
from pipelines.workers.pool import LOG_ENV, PARENT_ENV, SETTINGS_ENV, settings_from_json
from watchtower.logging import setup_logging


def main() -> int:
    if SETTINGS_ENV not in os.environ:
        print(f"{SETTINGS_ENV} is not set: start workers with `watchtower pipeline workers`", file=sys.stderr)
        return 2
    level, _, fmt = os.environ.get(LOG_ENV, "INFO console").partition(" ")
    setup_logging(level, fmt or "console")
    parent = int(os.environ.get(PARENT_ENV, "0")) or None
    return run_worker(settings_from_json(os.environ[SETTINGS_ENV]), parent)


if __name__ == "__main__":
    sys.exit(main())
