"""A real Sentinel set on loopback: harness/redis_sentinel.py, shared with the bench."""

from harness.redis_sentinel import SERVICE, RedisSentinelSet

__all__ = ["SERVICE", "RedisSentinelSet"]
