"""Receive a message body with bounded memory: small ones in memory, big ones compressed to disk.

DATA arrives in chunks; each chunk is unstuffed (RFC 5321 4.5.2), hashed and either kept or,
past SPOOL_AT bytes, fed through zlib into a spool file under the data directory. So four
25 MB messages at once cost a few chunk buffers of memory, not four copies each; the writer
then streams the spool file into the database.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import tempfile
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from storage.files import private_dir
from storage.intake import COMPRESS_LEVEL

SPOOL_AT = 1 << 20  # bytes kept in memory before a message goes to a spool file


@dataclass(frozen=True)
class Received:
    """One message as read: its SHA-256, size, and bytes (small) or compressed file (big)."""

    sha256: str
    size: int
    raw: bytes | None
    spool: Path | None  # zlib stream of the message, removed once stored

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)


class Sink:
    """Collect unstuffed message bytes; spill to a compressed spool file when big.

    Hashing, compressing and writing a big message run on a spooler thread (zlib, hashlib
    and file writes release the GIL), so the event loop only moves chunks.
    """

    def __init__(self, spool_dir: Path | None) -> None:
        self._spool_dir = spool_dir
        self._hash = hashlib.sha256()
        self._parts: list[bytes] = []
        self.size = 0
        self._file = None
        self._path: Path | None = None
        self._compressor = None
        self._writing: Future | None = None  # a write on the spooler thread
        self._abandoned = False

    async def feed(self, data: bytes) -> None:
        if self._file is None and (self._spool_dir is None or self.size + len(data) <= SPOOL_AT):
            self._hash.update(data)
            self.size += len(data)
            self._parts.append(data)
            return
        self._writing = _spooler().submit(self._spool_write, data)
        await asyncio.wrap_future(self._writing)

    def _spool_write(self, data: bytes) -> None:
        if self._abandoned:
            return
        if self._file is None:
            private_dir(self._spool_dir)
            handle, name = tempfile.mkstemp(prefix="data-", suffix=".z", dir=self._spool_dir)
            self._path = Path(name)
            self._file = os.fdopen(handle, "wb")
            self._compressor = zlib.compressobj(COMPRESS_LEVEL)
            for part in self._parts:
                self._file.write(self._compressor.compress(part))
            self._parts.clear()
        self._hash.update(data)
        self.size += len(data)
        self._file.write(self._compressor.compress(data))

    def finish(self) -> Received:
        digest = self._hash.hexdigest()
        if self._file is None:
            return Received(digest, self.size, b"".join(self._parts), None)
        self._file.write(self._compressor.flush())
        self._file.close()
        return Received(digest, self.size, None, self._path)

    def abandon(self) -> None:
        """Drop what was received (over the size limit, the client went away or was cut off).

        A write still running on the spooler thread (its reader was cancelled) finishes
        first; the file goes when it is done.
        """
        self._abandoned = True
        self._parts.clear()
        if self._writing is not None and not self._writing.done():
            self._writing.add_done_callback(lambda _: self._drop_file())
        else:
            self._drop_file()

    def _drop_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
            self._path.unlink(missing_ok=True)


@functools.cache
def _spooler() -> ThreadPoolExecutor:
    """The threads that compress and write big messages, started when the first one comes."""
    return ThreadPoolExecutor(2, thread_name_prefix="spool")


def take_lines(buffer: bytearray, first: bool) -> tuple[bytes, bool]:
    """Unstuff and take everything before the buffer's last CRLF; keep the rest.

    The buffer always starts with the CRLF that ended the previous line (or a leading
    sentinel CRLF when `first`), so a "CRLF ." never straddles the cut. Returns the bytes
    taken and whether the sentinel is still to be dropped.
    """
    cut = buffer.rfind(b"\r\n")
    if cut <= 0:
        return b"", first
    data = bytes(buffer[:cut])
    del buffer[:cut]
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n")
    return (data[2:] if first else data), False
