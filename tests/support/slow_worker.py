"""A worker target that is still starting (no signal handler of its own) for a long time."""

import time


def still_starting(settings, keyring_pem, handoff=None, http_handoff=None) -> None:
    time.sleep(60)


RUNNER = """
import sys
from config.settings import Settings
from sidecar.workers import run_workers
from tests.support.slow_worker import still_starting
sys.exit(run_workers(Settings(), 2, still_starting))
"""
