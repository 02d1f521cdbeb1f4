"""A real redis-server on a free port: harness/redis_server.py, shared with the bench."""

from harness.redis_server import RedisServer

__all__ = ["RedisServer"]
