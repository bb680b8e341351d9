"""`outreach serve | migrate | api-key create`: the command line, calling service.py."""
from __future__ import annotations

import argparse
import dataclasses
import asyncio
import logging
import os
import socket
import sys

from outreach import service, terminal
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
    demo = commands.add_parser("demo", help="sandbox: create leads and a 3-channel campaign, run it, watch it live")
    demo.add_argument("--leads", type=int, default=1000, help="how many leads (default 1000)")
    demo.add_argument("--port", type=int, default=0, help="port of the in-process API (default: a free one)")
    watch = commands.add_parser("watch", help="tail a campaign's progress feed")
    watch.add_argument("campaign", help="campaign id")
    watch.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
    watch.add_argument("--token", default=os.environ.get("OUTREACH_API_KEY"),
                       help="an API key or session token (default OUTREACH_API_KEY)")
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
    elif args.command == "demo":
        if args.leads < 1:
            raise errors.ConfigError("--leads must be at least 1")
        port = args.port or free_port()
        await service.run_demo(dataclasses.replace(settings, port=port), args.leads, sys.stdout)
    elif args.command == "watch":
        if not args.token:
            raise errors.ConfigError("--token (or OUTREACH_API_KEY) is required")
        url = args.url.rstrip("/").replace("http", "ws", 1) + f"/api/dashboard/campaigns/{args.campaign}/progress"
        final = await terminal.watch(url, args.token, sys.stdout)
        for line in terminal.summary_lines(final, 0.0)[:-1]:
            print(line)
    elif args.command == "migrate":
        applied = await service.prepare_database(settings)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    elif args.command == "api-key":
        row, key = await service.create_api_key(settings, args.org, args.name)
        print(key)
        print(f"organization {row['org_id']} ({args.org}); shown once, store it now", file=sys.stderr)
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
