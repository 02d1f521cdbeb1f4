"""Ports and waiting: one copy for the tests and the bench, in harness/net.py."""

from harness.net import free_port, wait_until

__all__ = ["free_port", "wait_until"]
