"""The bench's case families, each a `run(rec, stack)` that records its rows."""
