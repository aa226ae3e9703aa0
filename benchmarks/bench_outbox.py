"""How fast the notification outbox drains (issue 17): messages/s to a local SMTP server through
Apprise, and to the log channel.

1. Resets its own database (PostgreSQL `bench_outbox`, or a fresh SQLite file with --sqlite),
   writes N accounts (half of them chose e-mail, with an address) and N `share_payment_failed`
   notices, set-based.
2. Starts an SMTP server on localhost (aiosmtpd, accepting and counting) and drains the outbox with
   `dispatch_notifications` through the e-mail and SMS channels (both to that server), timed.
3. Writes N notices again and drains them to the log channel (the default with no URL set; the
   log lines go to /dev/null), timed.

    python benchmarks/bench_outbox.py --messages 2000
    python benchmarks/bench_outbox.py --messages 2000 --sqlite
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from databases import BENCH_SECRET, fresh_context, url_for

from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.models import Account, Notification
from mutualaid.db.schema import upgrade
from mutualaid.services.context import MessageChannels, ServiceContext
from mutualaid.services.notifications import dispatch_notifications
from mutualaid.services.personal_data import PersonalDataProtector

NOW = datetime(2026, 3, 7, 2, 0, tzinfo=UTC)


class Counting:
    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sqlite_context() -> ServiceContext:
    path = Path(tempfile.mkdtemp()) / "outbox.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(BENCH_SECRET),
    )


def accounts(ctx: ServiceContext, n: int) -> None:
    rows = [
        {
            "phone": str(13000000000 + i),
            "password_hash": None,
            "role": "member",
            "locale": "en" if i % 3 == 0 else "zh_CN",
            "created_at": NOW,
            "notify_channel": "email" if i % 2 == 0 else "sms",
            "email": f"m{i}@example.org" if i % 2 == 0 else None,
        }
        for i in range(n)
    ]
    with ctx.engine.begin() as connection:
        connection.execute(insert(Account), rows)


def notices(ctx: ServiceContext, n: int) -> None:
    with ctx.engine.begin() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM accounts ORDER BY id"))]
        connection.execute(
            insert(Notification),
            [
                {
                    "account_id": ids[i % len(ids)],
                    "kind": "share_payment_failed",
                    "subject_type": "period",
                    "subject_id": None,
                    "payload": {
                        "period": "2026-03-07",
                        "amount_fen": 1234 + i,
                        "retry_until": "2026-03-21",
                    },
                    "created_at": NOW,
                }
                for i in range(n)
            ],
        )


def drain(ctx: ServiceContext, batch: int) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = dispatch_notifications(ctx, batch=batch)
    return time.perf_counter() - wall, time.process_time() - cpu, result.sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the whole run
    logging.basicConfig(stream=devnull, level=logging.INFO)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=devnull))
    ctx = sqlite_context() if args.sqlite else fresh_context(url_for("bench_outbox"))
    database = "SQLite" if args.sqlite else "PostgreSQL"
    accounts(ctx, args.messages)

    handler = Counting()
    port = free_port()
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        url = f"mailto://127.0.0.1:{port}/{{to}}?from=plan@example.org&mode=insecure"
        ctx.messages = MessageChannels(
            email_url=url, sms_url=url.replace("{to}", "sms-{to}@sms.example.org")
        )
        notices(ctx, args.messages)
        wall, cpu, sent = drain(ctx, args.batch)
        assert sent == handler.received == args.messages, (sent, handler.received)
        print(
            f"{database} SMTP (Apprise, e-mail + SMS-by-mail): {sent} messages in {wall:.2f} s "
            f"= {sent / wall:,.0f} messages/s; CPU {cpu * 1e3 / sent:.2f} ms/message"
        )
    finally:
        smtp.stop()

    ctx.messages = MessageChannels()
    notices(ctx, args.messages)
    wall, cpu, sent = drain(ctx, args.batch)
    assert sent == args.messages
    print(
        f"{database} log channel: {sent} messages in {wall:.2f} s = {sent / wall:,.0f} messages/s; "
        f"CPU {cpu * 1e3 / sent:.2f} ms/message"
    )


if __name__ == "__main__":
    main()
