"""``RedisClusterCache``: Django's ``RedisCache`` over a Redis Cluster (or a Valkey cluster).

Django's own ``django.core.cache.backends.redis.RedisCache`` talks to one server (or a primary
with read replicas) and sends multi-key commands that a cluster refuses across slots. This
backend keeps its behaviour and serializer, over one ``redis.cluster.RedisCluster`` per process
(it discovers the nodes from ``LOCATION`` and follows slot moves and failovers):

.. code-block:: python

    CACHES = {
        "default": {
            "BACKEND": "logto_rs.django.redis_cluster.RedisClusterCache",
            "LOCATION": "redis://10.0.0.1:6379",  # any node of the cluster
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"

The session backends (``cache``, ``cached_db``) and logto-rs's refresh lock (``cache.add`` and
a compare-and-delete on one key) then work on the cluster. ``get_many``, ``set_many`` and
``delete_many`` go key by key (in one round trip per node), ``clear`` empties every primary.
``OPTIONS`` are ``redis.cluster.RedisCluster``'s keyword arguments (``serializer`` aside).
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from django.core.cache.backends.redis import RedisCache, RedisCacheClient, RedisSerializer

__all__ = ["RedisClusterCache", "RedisClusterCacheClient"]


class RedisClusterCacheClient(RedisCacheClient):
    """The cache's Redis operations over one ``redis.cluster.RedisCluster`` (thread-safe)."""

    def __init__(self, servers: list[str], serializer: Any = None, **options: Any) -> None:
        self._servers = servers
        self._options = options
        self._serializer = serializer or RedisSerializer()
        self._cluster: Optional[Any] = None
        self._cluster_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        """The process's cluster client (every node; the key's slot picks the node)."""
        if self._cluster is None:
            with self._cluster_lock:
                if self._cluster is None:
                    import redis.cluster

                    self._cluster = redis.cluster.RedisCluster.from_url(self._servers[0], **self._options)
        return self._cluster

    def get_many(self, keys: Any) -> dict[Any, Any]:
        """The values of ``keys`` that exist (``MGET`` split by slot)."""
        keys = list(keys)
        values = self.get_client().mget_nonatomic(keys)
        return {k: self._serializer.loads(v) for k, v in zip(keys, values) if v is not None}

    def set_many(self, data: dict[Any, Any], timeout: Optional[int]) -> None:
        """Write every key of ``data`` (a pipeline without a transaction: one trip per node)."""
        pipe = self.get_client().pipeline(transaction=False)
        for key, value in data.items():
            if timeout is None:
                pipe.set(key, self._serializer.dumps(value))
            elif timeout > 0:
                pipe.set(key, self._serializer.dumps(value), ex=timeout)
            else:
                pipe.delete(key)
        pipe.execute()

    def delete_many(self, keys: Any) -> None:
        """Delete ``keys`` (the client splits the delete by slot)."""
        self.get_client().delete(*keys)

    def clear(self) -> bool:
        """Empty every primary of the cluster."""
        client = self.get_client()
        return bool(client.flushdb(target_nodes=client.PRIMARIES))


class RedisClusterCache(RedisCache):
    """Django's ``RedisCache`` over a Redis Cluster: ``LOCATION`` is any node's ``redis://`` URL."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisClusterCacheClient
