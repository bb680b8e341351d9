"""The asyncpg pool, connection set-up, and the one boundary where driver errors become ours."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import AsyncIterator

import asyncpg
import orjson

from outreach.runtime import errors

log = logging.getLogger(__name__)

# Constraint names whose violation has a message worth showing to the caller.
CONSTRAINT_MESSAGES = {
    "phone_numbers_number_key": "This phone number is already registered",
    "channel_configs_org_channel_unique": "This channel is already configured",
    "attempts_once": "This lead was already attempted on this channel",
    "organizations_local_name": "An organization with this name already exists",
}


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=lambda value: orjson.dumps(value).decode(), decoder=orjson.loads, schema="pg_catalog"
    )
    await conn.set_type_codec(
        "json", encoder=lambda value: orjson.dumps(value).decode(), decoder=orjson.loads, schema="pg_catalog"
    )


def describe(url: str) -> str:
    """Where a database URL points, without its credentials."""
    parts = urllib.parse.urlsplit(url)
    socket_dir = urllib.parse.parse_qs(parts.query).get("host", [None])[0]
    return f"{socket_dir or parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


async def connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url)
    except (OSError, asyncio.TimeoutError) as exc:
        raise errors.ServiceError(f"Cannot connect to PostgreSQL at {describe(url)}: {exc}") from exc


# For the actors' pools: their statements touch a batch's rows by key, on pages that stay in shared buffers. With
# the default random_page_cost (4, a spinning disk) PostgreSQL scanned a whole campaign's rows rather than make
# 500 key probes once a campaign held some ten thousand leads (bench/execute.py).
KEYED_BATCHES = {"random_page_cost": "1.1"}


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10,
                      planner: dict | None = None) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=init_connection,
            # A long-lived connection otherwise keeps a stale generic plan for the lead search.
            server_settings={"plan_cache_mode": "force_custom_plan", "application_name": "outreach",
                             **(planner or {})},
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise errors.ServiceError(f"Cannot connect to PostgreSQL at {describe(url)}: {exc}") from exc


@contextlib.asynccontextmanager
async def pool_ctx(url: str, **kwargs) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(url, **kwargs)
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with translated_errors(), pool.acquire() as conn:
        yield conn


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with translated_errors(), pool.acquire() as conn, conn.transaction():
        yield conn


@contextlib.asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise errors.Conflict(CONSTRAINT_MESSAGES.get(exc.constraint_name, "Already exists")) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise errors.Invalid(_foreign_key_message(exc)) from exc
    except (asyncpg.CheckViolationError, asyncpg.NotNullViolationError) as exc:
        raise errors.Invalid(f"Invalid value for {exc.column_name or exc.constraint_name}") from exc
    except asyncpg.DataError as exc:
        raise errors.Invalid("Invalid value") from exc
    except asyncpg.ProgramLimitExceededError as exc:  # a value too big for an index entry, say
        raise errors.Invalid("A value is too long") from exc


def _foreign_key_message(exc: asyncpg.ForeignKeyViolationError) -> str:
    detail = exc.detail or ""
    if "is still referenced" in detail:
        return "It is still in use"
    return "A referenced record does not exist"


async def ensure_database(url: str) -> None:
    """Create the database named in `url` when the server lacks it (a first local run)."""
    try:
        conn = await connect(url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await connect(urllib.parse.urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        log.info("created database %s", name)
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await admin.close()
