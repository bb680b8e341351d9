"""`outreach serve | migrate | api-key create | telegram ...`: the command line, calling service.py."""
from __future__ import annotations

import argparse
import dataclasses
import asyncio
import datetime
import getpass
import logging
import os
import socket
import sys

from outreach import embedded, logs, processes, service, terminal
from outreach.runtime import errors
from outreach.runtime.config import Settings


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
    leads = commands.add_parser("leads", help="bulk work on leads")
    lead_commands = leads.add_subparsers(dest="leads_command", required=True)
    import_file = lead_commands.add_parser("import", help="import a CSV of leads into an organization, with a progress bar")
    import_file.add_argument("file", help="CSV with a header row (firstName, lastName, email, phone, telegram, ...)")
    import_file.add_argument("--org", required=True, help="self-hosted organization name (created if absent)")
    add_telegram_commands(commands)
    return parser


def add_telegram_commands(commands) -> None:
    telegram = commands.add_parser("telegram", help="manage the pool of Telegram accounts")
    telegram_commands = telegram.add_subparsers(dest="telegram_command", required=True)
    add = telegram_commands.add_parser("add", help="log an account in (code, then 2FA password); stores its session "
                                                   "encrypted with OUTREACH_SECRET_KEY")
    add.add_argument("--phone", required=True, help="the account's phone number, international format")
    add.add_argument("--active", action="store_true",
                     help="campaigns may use it at once (default: warming_up, which campaigns skip)")
    add.add_argument("--daily-limit", type=int, help="messages a day (default 10)")
    assign = telegram_commands.add_parser("assign", help="give an account to an organization")
    assign.add_argument("account", help="account id or phone number")
    assign.add_argument("--org", required=True, help="organization id, or a self-hosted organization's name")
    telegram_commands.add_parser("list", help="every account, its organization and today's sends")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        serving = args.command == "serve"
        logs.configure_logging(json_lines=(settings.log_format or ("json" if serving else "text")) == "json",
                               access_log=serving)
        quiet_third_party_startup()
        settings = service.complete_settings(settings)
        servers, started = None, processes.Tracker().start()
        if args.command != "watch":  # every other command reaches the database
            settings, servers = embedded.with_embedded_servers(settings)
        try:
            return asyncio.run(run(args, settings))
        finally:
            stop_everything_started(servers, started)
    except errors.ConfigError as exc:
        print(f"outreach: configuration error: {exc}", file=sys.stderr)
        return 2
    except (errors.ServiceError, OSError) as exc:
        print(f"outreach: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def stop_everything_started(servers: embedded.EmbeddedServers | None, started: processes.Tracker) -> None:
    """Nothing the command started outlives it: Ray, then the embedded servers (daemons, nobody's children), then
    whatever of its process tree is still running (Ray's agents survive Ray; see outreach/processes.py)."""
    try:
        service.stop_runtime()
        if servers is not None:
            servers.stop()
    finally:  # whatever failed above, nothing is left running
        started.stop_all()


class StartupNoise(logging.Filter):
    """Ray's start-up lines that say nothing to an operator of this service: its token authentication is on (as it
    should be), its SIGTERM handler is ours, it started the local Ray we asked for."""

    TEXTS = ("Token authentication is enabled", "SIGTERM handler is not set", "Started a local Ray instance")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.TEXTS)


def quiet_third_party_startup() -> None:
    """Ray logs through its own handler on the `ray` logger (records of its modules reach it by propagation)."""
    for handler in logging.getLogger("ray").handlers:
        handler.addFilter(StartupNoise())


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
    elif args.command == "leads":
        result = await service.import_leads_file(settings, args.file, args.org, sys.stdout)
        print(f"imported {result['imported']:,} of {result['total']:,} rows; skipped {result['skipped']:,} "
              f"({result['duplicates']:,} duplicates, {result['error_count']:,} with row errors)")
    elif args.command == "migrate":
        applied = await service.prepare_database(settings)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    elif args.command == "api-key":
        row, key = await service.create_api_key(settings, args.org, args.name)
        print(key)
        print(f"organization {row['org_id']} ({args.org}); shown once, store it now", file=sys.stderr)
    elif args.command == "telegram":
        await run_telegram(args, settings)
    return 0


async def run_telegram(args, settings) -> None:
    if args.telegram_command == "add":
        if args.daily_limit is not None and args.daily_limit < 1:
            raise errors.ConfigError("--daily-limit must be at least 1")
        logging.getLogger("telethon").setLevel(logging.WARNING)  # its connection chatter would split the prompts
        row = await service.add_telegram_account(settings, args.phone, active=args.active, daily_limit=args.daily_limit,
                                                 ask_code=ask_line, ask_password=ask_secret)
        print(f"{row['id']} {row['phone']} @{row['username'] or '-'} {row['status']}")
    elif args.telegram_command == "assign":
        row = await service.assign_telegram_account(settings, args.account, args.org)
        print(f"{row['phone']} assigned to {row['org_name']} ({row['org_id']})")
    else:
        for line in account_lines(await service.list_telegram_accounts(settings)):
            print(line)


async def ask_line(text: str) -> str:
    # In a thread: Telethon's connection keeps running on the event loop while the operator types.
    try:
        return await asyncio.to_thread(input, text)
    except EOFError:
        raise errors.Invalid("The Telegram login needs answers on standard input") from None


async def ask_secret(text: str) -> str:
    try:
        return await asyncio.to_thread(getpass.getpass, text)
    except EOFError:
        raise errors.Invalid("The Telegram login needs answers on standard input") from None


def account_lines(rows: list[dict]) -> list[str]:
    """One tab-separated line per account under a header; sessions are never printed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = ["id\tphone\tusername\tstatus\ttoday\torganization\tsession\tpaused until"]
    for row in rows:
        paused = row["flood_wait_until"]
        lines.append("\t".join([
            str(row["id"]), row["phone"], f"@{row['username']}" if row["username"] else "-", row["status"],
            f"{row['daily_message_count']}/{row['max_daily_messages']}", row["org_name"] or "-",
            "sandbox" if row["sandbox"] else "encrypted",
            paused.astimezone(datetime.timezone.utc).isoformat(timespec="seconds") if paused and paused > now else "-",
        ]))
    return lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
