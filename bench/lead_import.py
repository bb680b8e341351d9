"""Peak memory of the lead CSV import: `outreach leads import` at 100,000 and 1,000,000 rows, and a 20 MB file
over HTTP, each in its own process, so the figures are the import's and nothing else's.

Run: python bench/lead_import.py [--rows 1000000] [--http-mb 20]

Builds a throwaway database (outreach_bench_import) from the migrations. The CLI runs as a child process whose
peak RSS comes from wait4; the HTTP import posts the file with curl (another process) to an API process (no Ray:
the import needs none) whose peak RSS (VmHWM) is read before and after. Every row has an email and a phone, and
one row in fifty repeats an earlier email, so the dedupe has work to do.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

import asyncpg

from outreach.storage import db, migrate

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_import"
SERVER = """
import asyncio, sys
from aiohttp import web
from outreach.http.app import Deps, build_app
from outreach.runtime import policy
from outreach.runtime.config import Settings
from outreach.storage import db
from outreach.storage.redis_store import redis_ctx

async def main(url, redis_url, port):
    unlimited = policy.PlanTable(policy.DEFAULT_PLAN_LIMITS, unpaid=policy.SELF_HOSTED)  # as without billing
    settings = Settings(database_url=url, redis_url=redis_url, secret_key="bench", max_import_bytes=64 << 20,
                        plan_limits=unlimited)
    async with db.pool_ctx(url, min_size=1, max_size=4) as pool, redis_ctx(redis_url) as redis:
        runner = web.AppRunner(build_app(settings, Deps(pool=pool, redis=redis)))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def write_csv(path: str, rows: int) -> int:
    with open(path, "w") as out:
        out.write("firstName,lastName,email,phone,company\n")
        for index in range(rows):
            base = index - 1 if index % 50 == 49 else index  # one row in fifty repeats the previous email
            email = f"lead{base}@example{base % 997}.com"
            out.write(f"First{index},Last{index},{email},+1415{index:07d},Company {index % 5000}\n")
    return os.path.getsize(path)


def rows_for_bytes(megabytes: int) -> int:
    return int(megabytes * 1024 * 1024 / len("First123456,Last123456,lead123456@example123.com,+14150123456,Company 1234\n"))


async def fresh_database() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute('DROP DATABASE IF EXISTS "outreach_bench_import" WITH (FORCE)')
    finally:
        await admin.close()
    await db.ensure_database(BENCH_URL)
    await migrate.migrate(BENCH_URL)


def cli_import(path: str, org: str) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, the summary line) of `outreach leads import` in a child process."""
    env = {**os.environ, "DATABASE_URL": BENCH_URL}
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "outreach.cli", "leads", "import", path, "--org", org],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    out = child.stdout.read()
    if status != 0:
        raise SystemExit(f"import failed: {child.stderr.read()}")
    return time.monotonic() - started, usage.ru_maxrss // 1024, out.strip().splitlines()[-1]


def peak_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024


def http_import(path: str, redis_url: str) -> tuple[float, int, int, str]:
    """(seconds, the API process's peak RSS before and after, curl's answer) for one upload."""
    server = subprocess.Popen([sys.executable, "-c", SERVER, BENCH_URL, redis_url, "18731"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        key = subprocess.run([sys.executable, "-m", "outreach.cli", "api-key", "create", "--org", "HTTP bench"],
                             env={**os.environ, "DATABASE_URL": BENCH_URL}, capture_output=True, text=True,
                             check=True).stdout.strip()
        before = peak_mb(server.pid)
        started = time.monotonic()
        answer = subprocess.run(["curl", "-s", "-H", f"Authorization: Bearer {key}", "-F", f"file=@{path}",
                                 "http://127.0.0.1:18731/api/dashboard/leads/import"], capture_output=True, text=True,
                                check=True).stdout
        return time.monotonic() - started, before, peak_mb(server.pid), answer[:200]
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--http-mb", type=int, default=20)
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--http-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(fresh_database())
    with tempfile.TemporaryDirectory() as folder:
        for rows in () if args.http_only else (args.rows // 10, args.rows):
            path = os.path.join(folder, f"{rows}.csv")
            size = write_csv(path, rows)
            seconds, peak, summary = cli_import(path, f"CLI bench {rows}")
            print(f"cli   {rows:>9,} rows {size / 1e6:6.1f} MB  {seconds:6.1f} s  peak RSS {peak} MB  ({summary})")
        path = os.path.join(folder, "http.csv")
        size = write_csv(path, rows_for_bytes(args.http_mb))
        seconds, before, after, answer = http_import(path, args.redis_url)
        print(f"http  {size / 1e6:.1f} MB  {seconds:6.1f} s  API peak RSS {before} MB before, {after} MB after  {answer}")


if __name__ == "__main__":
    main()
