"""A real Redis Cluster on loopback: harness/redis_cluster.py, shared with the bench."""

from harness.redis_cluster import RedisCluster

__all__ = ["RedisCluster"]
