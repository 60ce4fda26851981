"""What an MTA sees when it talks SMTP or LMTP to postroom: reply codes and what is stored."""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import time

import pytest

from storage.db import open_database
from storage.models import Intake, RawMessage
from tests.daemon import DOMAIN
from tests.loops import in_own_thread
from tests.mail import message

ENHANCED = re.compile(rb"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")


def read_reply(sock_file) -> list[bytes]:
    lines = []
    while True:
        line = sock_file.readline()
        assert line, "connection closed"
        lines.append(line.rstrip(b"\r\n"))
        if line[3:4] == b" ":
            return lines


def intakes(daemon) -> list[Intake]:
    db = open_database(daemon.db_url)
    try:
        return list(Intake.select().order_by(Intake.id))
    finally:
        db.close()


def test_ehlo_and_lhlo_advertise_size_8bitmime_smtputf8_pipelining_enhanced_codes(daemon):
    with daemon.smtp() as client:
        for feature in ("size", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes"):
            assert client.has_extn(feature), feature
    with smtplib.LMTP("127.0.0.1", daemon.lmtp_port) as client:
        code, features = client.ehlo("mta.test")  # smtplib.LMTP sends LHLO
        assert code == 250
        assert b"PIPELINING" in features and b"ENHANCEDSTATUSCODES" in features


def test_unknown_recipients_are_refused_with_550_5_1_1(daemon):
    account_id, token = re.match(r"inbox\+(\d+)\.(\w+)@", daemon.inbox).groups()
    wrong = [
        f"inbox+{account_id}.{'x' * len(token)}@{DOMAIN}",  # wrong token
        f"inbox+999.{token}@{DOMAIN}",  # no such account
        f"inbox+{account_id}.{token}@elsewhere.test",  # not an ingest domain
        f"someone@{DOMAIN}",
    ]
    with daemon.smtp() as client:
        client.mail("a@customer.test")
        for rcpt in wrong:
            code, reply = client.rcpt(rcpt)
            assert (code, reply[:5]) == (550, b"5.1.1"), rcpt
        code, reply = client.rcpt(daemon.inbox.upper())  # MTAs may fold the case
        assert code == 250, reply


def test_too_many_recipients_get_452_4_5_3(db_url, tmp_path):
    from tests.daemon import Daemon

    with Daemon(tmp_path, db_url, max_recipients=2) as daemon, daemon.smtp() as client:
        client.mail("a@customer.test")
        assert client.rcpt(daemon.inbox)[0] == 250
        assert client.rcpt(daemon.inbox)[0] == 250
        assert client.rcpt(daemon.inbox)[:2] == (452, b"4.5.3 Too many recipients")


def test_oversized_mail_is_refused_at_mail_from_and_after_data_with_552(db_url, tmp_path):
    from tests.daemon import Daemon

    with Daemon(tmp_path, db_url, max_message_bytes=4096) as daemon:
        with daemon.smtp() as client:
            code, reply = client.mail("a@customer.test", ["SIZE=5000"])
            assert (code, reply[:5]) == (552, b"5.3.4")
        with daemon.smtp() as client:
            client.mail("a@customer.test")
            client.rcpt(daemon.inbox)
            code, reply = client.data(message(body="x" * 6000))
            assert (code, reply[:5]) == (552, b"5.3.4")
            # the session goes on: the next, small message is accepted
            client.mail("a@customer.test")
            client.rcpt(daemon.inbox)
            assert client.data(message())[0] == 250
        assert len(intakes(daemon)) == 1


def test_every_reply_carries_an_enhanced_status_code(daemon):
    with socket.create_connection(("127.0.0.1", daemon.smtp_port)) as sock:
        reader = sock.makefile("rb")
        assert read_reply(reader)[0].startswith(b"220 ")
        commands = [
            b"EHLO client.test",
            b"MAIL FROM:<a@customer.test>",
            b"RCPT TO:<nobody@in.example>",
            b"RCPT TO:<" + daemon.inbox.encode() + b">",
            b"NOOP",
            b"VRFY someone",
            b"BOGUS",
            b"MAIL FROM:<b@customer.test>",
            b"RSET",
            b"DATA",
            b"QUIT",
        ]
        for command in commands:
            sock.sendall(command + b"\r\n")
            reply = read_reply(reader)
            if command.startswith(b"EHLO"):
                continue  # RFC 2034: EHLO lines carry no enhanced code
            assert ENHANCED.match(reply[-1]), (command, reply)


def test_250_names_the_queue_id_that_the_intake_record_keeps(daemon):
    code, reply = daemon.send(message("Queue id"))
    assert code == 250
    queue_id = re.search(rb"queued as (\w+)", reply).group(1).decode()
    [intake] = intakes(daemon)
    assert intake.queue_id == queue_id
    assert intake.mail_from == "sender@customer.test"
    assert intake.protocol == "smtp"
    assert intake.helo == "client.test"
    assert intake.peer.startswith("127.0.0.1:")
    assert f"queue_id={queue_id}" in daemon.log_text()


def test_a_retried_delivery_of_the_same_bytes_is_stored_once(daemon):
    raw = message("Retried by the MTA")
    assert daemon.send(raw)[0] == 250
    assert daemon.send(raw)[0] == 250
    assert len(intakes(daemon)) == 1
    # the same Message-ID with other bytes is another message, not a duplicate
    other = raw.replace(b"Retried by the MTA", b"Retried, but edited")
    assert daemon.send(other)[0] == 250
    assert len(intakes(daemon)) == 2


def test_lines_longer_than_998_octets_are_accepted_and_kept(daemon):
    long_line = "x" * 5000
    raw = message("Long line", body=long_line)
    assert daemon.send(raw)[0] == 250
    db = open_database(daemon.db_url)
    try:
        from storage.intake import load_raw

        [row] = RawMessage.select()
        assert load_raw(row.sha256) == raw
    finally:
        db.close()


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r"],
    ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR", "CRLF.CR"],
)
def test_smuggling_sequences_never_end_data_or_make_a_second_message(daemon, smuggled):
    inner = (
        b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<" + daemon.inbox.encode() + b">\r\nDATA\r\n"
    )
    body = b"Subject: outer\r\n\r\nbefore" + smuggled + inner + b"Subject: smuggled\r\n\r\nx\r\n"
    with socket.create_connection(("127.0.0.1", daemon.smtp_port)) as sock:
        reader = sock.makefile("rb")
        read_reply(reader)
        for command in (
            b"EHLO c.test",
            b"MAIL FROM:<a@customer.test>",
            b"RCPT TO:<" + daemon.inbox.encode() + b">",
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            read_reply(reader)
        sock.sendall(body + b".\r\n")
        assert read_reply(reader)[-1].startswith(b"250 ")
        sock.sendall(b"QUIT\r\n")
        assert read_reply(reader)[-1].startswith(b"221 ")
    [intake] = intakes(daemon)
    db = open_database(daemon.db_url)
    try:
        from storage.intake import load_raw

        stored = load_raw(intake.raw_id)
    finally:
        db.close()
    assert b"MAIL FROM:<evil@attacker.test>" in stored
    assert stored.endswith(b"Subject: smuggled\r\n\r\nx\r\n")


def test_dot_stuffed_lines_are_unstuffed_and_pipelined_commands_after_data_work(daemon):
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"
    with socket.create_connection(("127.0.0.1", daemon.smtp_port)) as sock:
        reader = sock.makefile("rb")
        read_reply(reader)
        sock.sendall(b"EHLO c.test\r\n")
        read_reply(reader)
        rcpt = b"RCPT TO:<" + daemon.inbox.encode() + b">\r\n"
        # one write: envelope, DATA, the dot-stuffed message and the next commands
        sock.sendall(b"MAIL FROM:<a@c.test>\r\n" + rcpt + b"DATA\r\n")
        for _ in range(3):
            read_reply(reader)
        stuffed = body.replace(b"\r\n.", b"\r\n..")
        sock.sendall(stuffed + b".\r\nNOOP\r\nQUIT\r\n")
        assert read_reply(reader)[-1].startswith(b"250 2.0.0")
        assert read_reply(reader)[-1].startswith(b"250 ")
        assert read_reply(reader)[-1].startswith(b"221 ")
    db = open_database(daemon.db_url)
    try:
        from storage.intake import load_raw

        [intake] = list(Intake.select())
        assert load_raw(intake.raw_id) == body
    finally:
        db.close()


def test_connections_over_the_limit_get_421_and_others_carry_on(db_url, tmp_path):
    from tests.daemon import Daemon

    with Daemon(tmp_path, db_url, max_smtp_connections=2) as daemon:
        first, second = daemon.smtp(), daemon.smtp()
        with socket.create_connection(("127.0.0.1", daemon.smtp_port)) as third:
            assert third.makefile("rb").readline().startswith(b"421 4.3.2")
        first.quit()
        time.sleep(0.2)
        with daemon.smtp() as fourth:
            assert fourth.noop()[0] == 250
        second.quit()


def test_lmtp_on_a_unix_socket(db_url, tmp_path):
    from tests.daemon import Daemon

    path = tmp_path / "run" / "lmtp.sock"
    with Daemon(tmp_path, db_url) as daemon:
        daemon.stop()
        daemon.lmtp_unix = path
        daemon.start_with(lmtp_listen=f"unix:{path}")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            reader = sock.makefile("rb")
            assert read_reply(reader)[0].startswith(b"220")
            for command in (
                b"LHLO mta.test",
                b"MAIL FROM:<a@c.test>",
                b"RCPT TO:<" + daemon.inbox.encode() + b">",
                b"DATA",
            ):
                sock.sendall(command + b"\r\n")
                read_reply(reader)
            sock.sendall(message("Over the unix socket") + b".\r\n")
            assert read_reply(reader)[-1].startswith(b"250 2.1.5")
        assert intakes(daemon)[0].protocol == "lmtp"


def test_a_slow_sender_in_the_middle_of_data_does_not_hold_up_other_sessions(daemon):
    with socket.create_connection(("127.0.0.1", daemon.smtp_port)) as slow:
        reader = slow.makefile("rb")
        read_reply(reader)
        for command in (
            b"EHLO slow.test",
            b"MAIL FROM:<a@c.test>",
            b"RCPT TO:<" + daemon.inbox.encode() + b">",
            b"DATA",
        ):
            slow.sendall(command + b"\r\n")
            read_reply(reader)
        slow.sendall(b"Subject: slow\r\n\r\n" + b"half of a big message\r\n" * 20000)
        # meanwhile another MTA session delivers in full
        assert daemon.send(message("Quick one"))[0] == 250
        slow.sendall(b"the rest\r\n.\r\n")
        assert read_reply(reader)[-1].startswith(b"250 2.0.0")
    subjects = {e["subject"] for e in daemon.wait_for_entries(2)}
    assert subjects == {"slow", "Quick one"}


def test_a_fault_while_checking_recipients_is_a_4xx_never_a_5xx(daemon):
    def rename(old: str, new: str) -> None:
        db = open_database(daemon.db_url)
        try:
            db.execute_sql(f"ALTER TABLE {old} RENAME TO {new}")
        finally:
            db.close()

    rename("account", "account_away")  # our fault: the table the RCPT check reads is gone
    try:
        with daemon.smtp() as client:
            client.mail("a@customer.test")
            code, reply = client.rcpt(daemon.inbox)
    finally:
        rename("account_away", "account")
    assert (code, reply[:5]) == (451, b"4.3.0"), reply
    assert daemon.send(message("After the fault"))[0] == 250


PATHS = [
    "<anna@bakery.example>",
    "<anna@bakery.example> SIZE=100 BODY=8BITMIME",
    "<anna@bakery.example>SIZE=1",
    " <a.b+c@d-e.f>",
    "<>",
    '<"anna miller"@bakery.example>',
    "anna@bakery.example",
    "<anna@[192.0.2.1]>",
    "<anna@bakery.example> (comment) SIZE=1",
    "<anna..miller@bakery.example>",
    "<.anna@bakery.example>",
    "<anna@bakery.example",
    "<@relay.example:anna@bakery.example>",
    "<" + "a" * 65 + "@bakery.example>",
    "<" + "a" * 64 + "@bakery.example>",
    "<Ünïcode@bäckerei.example>",
    "<anna@bakery.example> <other@bakery.example>",
    "",
]


@pytest.mark.parametrize("path", PATHS)
def test_the_fast_path_parser_reads_mail_and_rcpt_paths_as_aiosmtpd_does(path):
    from aiosmtpd.smtp import SMTP

    from smtpd_ingest.smtp_session import IngestSMTP

    class Handler:
        pass

    ours = IngestSMTP(Handler(), hostname="postroom.test")
    reference = SMTP(Handler(), hostname="postroom.test")
    assert ours._getaddr(path) == reference._getaddr(path)


def big_message(seed: int) -> bytes:
    """About 3 MB: dot-started lines everywhere, lines of every length, one of 300 KB."""
    import random

    rng = random.Random(seed)
    lines = [b"Subject: big and dotty", b""]
    for number in range(60_000):
        line = bytes(rng.choice(b"abc.xyz \t") for _ in range(rng.randint(0, 90)))
        lines.append(b"." + line if number % 7 == 0 else line)
    lines.insert(30_000, b"y" * 300_000)  # longer than a read chunk, without a CRLF
    lines += [b".", b"..", b". ", b"end"]
    return b"\r\n".join(lines) + b"\r\n"


def test_big_messages_go_through_the_spool_and_are_stored_byte_exact(daemon):
    sent = [big_message(seed) for seed in (1, 2)]
    for raw, port in zip(sent, (daemon.smtp_port, daemon.lmtp_port), strict=True):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            reader = sock.makefile("rb")
            read_reply(reader)
            sock.sendall(b"LHLO c.test\r\n" if port == daemon.lmtp_port else b"EHLO c.test\r\n")
            read_reply(reader)
            rcpt = b"RCPT TO:<" + daemon.inbox.encode() + b">\r\n"
            sock.sendall(b"MAIL FROM:<a@c.test>\r\n" + rcpt + b"DATA\r\n")
            for _ in range(3):
                read_reply(reader)
            # sent in uneven pieces, so chunk edges fall inside CRLF and CRLF "."
            stuffed = raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"
            for start in range(0, len(stuffed), 65_537):
                sock.sendall(stuffed[start : start + 65_537])
            assert read_reply(reader)[-1].startswith(b"250 2.")
    db = open_database(daemon.db_url)
    try:
        from storage.intake import load_raw

        stored = [load_raw(intake.raw_id) for intake in Intake.select().order_by(Intake.id)]
    finally:
        db.close()
    assert stored == sent
    assert list((daemon.folder / "data" / "spool").glob("data-*")) == []  # removed once stored


def test_an_oversized_big_message_leaves_nothing_in_the_spool(db_url, tmp_path):
    from tests.daemon import Daemon

    with Daemon(tmp_path, db_url, max_message_bytes=2_000_000) as daemon:
        with daemon.smtp() as client:
            client.mail("a@customer.test")
            client.rcpt(daemon.inbox)
            code, reply = client.data(big_message(3))
            assert (code, reply[:5]) == (552, b"5.3.4")
            client.mail("a@customer.test")
            client.rcpt(daemon.inbox)
            assert client.data(message())[0] == 250
        assert len(intakes(daemon)) == 1
        assert list((daemon.folder / "data" / "spool").glob("data-*")) == []


def test_an_idle_session_is_closed_after_the_timeout_which_each_command_moves_on():
    """A postroom SMTP session on a real socket, with a timeout of 0.6 s: NOOPs every 0.3 s
    keep it open for four times as long; once quiet, it is closed, not before its time."""
    from smtpd_ingest.smtp_session import IngestSMTP

    async def run() -> tuple[list[bytes], float]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: IngestSMTP(object(), timeout=0.6, hostname="test", loop=loop),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = [await reader.readline()]
        for _ in range(8):
            await asyncio.sleep(0.3)
            writer.write(b"NOOP\r\n")
            replies.append(await reader.readline())
        quiet_since = loop.time()
        closed = await asyncio.wait_for(reader.read(), timeout=10)  # b"" once closed
        waited = loop.time() - quiet_since
        assert closed == b""
        writer.close()
        server.close()
        await server.wait_closed()
        return replies, waited

    replies, waited = in_own_thread(asyncio.run, run(), timeout=60)
    assert replies[0].startswith(b"220 ")
    assert all(reply.startswith(b"250 2.0.0") for reply in replies[1:]), replies
    assert waited >= 0.55  # closed by the timeout, counted from the last command
