"""A real Redis Cluster and a real Sentinel set, each started once per session."""

from __future__ import annotations

import pytest

from tests.conftest import need_binary


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory, redis_server_path):
    from tests.support.redis_cluster import RedisCluster

    import shutil
    need_binary("redis-cli", shutil.which("redis-cli"))
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster"), redis_server_path).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory, redis_server_path):
    from tests.support.redis_sentinel import RedisSentinelSet

    sentinels = RedisSentinelSet(tmp_path_factory.mktemp("sentinel"), redis_server_path).start()
    yield sentinels
    sentinels.stop()
