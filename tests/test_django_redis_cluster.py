"""Django's cache on a Redis Cluster (``logto_rs.django.redis_cluster.RedisClusterCache``): its
multi-key operations across slots, and the refresh lock's atomic release."""

from __future__ import annotations

from redis_topologies import Topology


def test_the_django_cluster_cache_serves_many_keys_and_releases_the_lock_atomically(
    cluster: Topology,
) -> None:
    from logto_rs.django.redis_cluster import RedisClusterCache
    from logto_rs.django.storage import _redis_compare_and_delete

    cache = RedisClusterCache(cluster.url, {})
    keys = [f"key-{n}" for n in range(20)]  # spread over the cluster's slots
    assert len(cluster.slots([cache.make_and_validate_key(k).encode() for k in keys])) > 1
    cache.set_many({k: {"n": n} for n, k in enumerate(keys)}, timeout=60)
    assert cache.get_many(keys) == {k: {"n": n} for n, k in enumerate(keys)}
    cache.delete_many(keys[:10])
    assert sorted(cache.get_many(keys)) == sorted(keys[10:])
    cache.set_many({"forever": 1}, timeout=None)  # no expiry
    cache.set_many({"key-19": 1}, timeout=0)  # expires at once: deleted
    assert cluster.client().ttl(cache.make_and_validate_key("forever")) == -1
    assert cache.get_many(["forever", "key-19"]) == {"forever": 1}
    # The refresh lock: add, then a compare-and-delete that only its owner's token passes.
    assert cache.add("logto_rs:lock:session:refresh", "owner", timeout=30)
    assert not cache.add("logto_rs:lock:session:refresh", "other", timeout=30)
    assert _redis_compare_and_delete(cache, "logto_rs:lock:session:refresh", "other")
    assert cache.get("logto_rs:lock:session:refresh") == "owner"
    assert _redis_compare_and_delete(cache, "logto_rs:lock:session:refresh", "owner")
    assert cache.get("logto_rs:lock:session:refresh") is None
    cache.clear()
    assert cluster.keys("*") == []
