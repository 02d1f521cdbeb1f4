"""Process helpers shared by the tests and the bench: free ports, polling with a deadline, the
Envoy binary, `auth-sidecar serve` and other processes on loopback, real Redis sets.

Not shipped: pyproject.toml's package list leaves it out; tests and bench import it from the
repository root.
"""
