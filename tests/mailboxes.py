"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives, for message tests."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True, slots=True)
class Received:
    to: tuple[str, ...]
    subject: str
    body: str


@dataclass
class Mailbox:
    """What the server received, in order."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        part = parsed.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        with self._lock:
            self.messages.append(Received(tuple(envelope.rcpt_tos), str(parsed["subject"]), body))
        return "250 Message accepted for delivery"

    def url(self, to: str = "{to}") -> str:
        """An Apprise URL that delivers to this server; `{to}` stays for the outbox to fill."""
        return f"mailto://{self.host}:{self.port}/{to}?from=plan@example.org&mode=insecure"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if address in m.to]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox(port=free_port())
        self.controller = Controller(
            self.mailbox, hostname=self.mailbox.host, port=self.mailbox.port
        )

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self.mailbox

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
