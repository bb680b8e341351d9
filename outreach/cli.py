"""`outreach serve | migrate | api-key create`: the command line, calling service.py."""
from __future__ import annotations

import argparse
import dataclasses
import asyncio
import logging
import sys

from outreach import service
from outreach.runtime import errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outreach", description="Outreach Runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, then run the API server")
    serve.add_argument("--host", help="address to listen on (default OUTREACH_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default OUTREACH_PORT or 8080)")
    commands.add_parser("migrate", help="apply the database migrations")
    api_key = commands.add_parser("api-key", help="manage API keys of self-hosted organizations")
    api_key_commands = api_key.add_subparsers(dest="api_key_command", required=True)
    create = api_key_commands.add_parser("create", help="print a new API key for an organization")
    create.add_argument("--org", required=True, help="organization name (created if absent)")
    create.add_argument("--name", default="CLI key", help="a label for the key")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = service.load_settings()
        return asyncio.run(run(args, settings))
    except errors.ConfigError as exc:
        print(f"outreach: configuration error: {exc}", file=sys.stderr)
        return 2
    except (errors.ServiceError, OSError) as exc:
        print(f"outreach: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def run(args, settings) -> int:
    if args.command == "serve":
        overrides = {"host": args.host or settings.host, "port": args.port or settings.port}
        await service.serve(dataclasses.replace(settings, **overrides))
    elif args.command == "migrate":
        applied = await service.prepare_database(settings)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    elif args.command == "api-key":
        row, key = await service.create_api_key(settings, args.org, args.name)
        print(key)
        print(f"organization {row['org_id']} ({args.org}); shown once, store it now", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
