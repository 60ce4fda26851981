"""An aiosmtpd SMTP and LMTP server whose handler does nothing: the baseline for bench/ingest."""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP


class NoopHandler:
    async def handle_DATA(self, server, session, envelope):
        if isinstance(server, LMTP):
            return "\r\n".join("250 2.0.0 OK" for _ in envelope.rcpt_tos)
        return "250 2.0.0 OK"


async def main(smtp_port: int, lmtp_port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = NoopHandler()
    for cls, port in ((SMTP, smtp_port), (LMTP, lmtp_port)):
        await loop.create_server(
            lambda cls=cls: cls(handler, enable_SMTPUTF8=True, hostname="noop", loop=loop),
            "127.0.0.1",
            port,
        )
    print("noop ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
