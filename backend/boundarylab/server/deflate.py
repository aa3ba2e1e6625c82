"""permessage-deflate compressed once for every viewer (issue 11, finding 16).

uvicorn's WebSocket protocol compresses each message again for each connection, keeping a
compression context per connection (context takeover), so the same boundary frame sent to
100 viewers is compressed 100 times on the event loop: 100 viewers of a 300×300 run at
60 fps took the loop's lag p99 from 33 ms to 184 ms. Without context takeover a message's
compressed bytes depend only on the message and the compression settings, so they can be
made once and sent to every viewer; this module negotiates that and keeps the latest
compressed messages in a small cache.

The deflate itself still matters: a `units` message is 7.4 KiB as JSON and 2.7 KiB as sent
(README "Benchmarks"), and a finished run's snapshot shrinks to about a third.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

# uvicorn's own choices: a 4 KiB window each way, a small compression memory.
WINDOW_BITS = 12
COMPRESS_SETTINGS = {"memLevel": 5}
SHARED_MIN_BYTES = 1024  # smaller messages cost less to compress than to look up
CACHE_BYTES = 16 * 2**20  # messages and their compressed forms kept, in all


class CompressedCache:
    """The latest messages compressed, by (window bits, message bytes), up to `max_bytes`
    of both together, the least recently used forgotten first."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self.compressions = 0  # how many messages were compressed (for tests)
        self._entries: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()

    def compressed(self, data: bytes, window_bits: int) -> bytes:
        """`data` as one permessage-deflate message without context takeover: raw deflate,
        sync-flushed, its trailing empty block (00 00 ff ff) removed (RFC 7692 7.2.1)."""
        key = (window_bits, data)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        encoder = zlib.compressobj(wbits=-window_bits, **COMPRESS_SETTINGS)  # type: ignore[arg-type]
        out = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        out = out[:-4]
        self.compressions += 1
        self._entries[key] = out
        self.held += len(data) + len(out)
        while self.held > self.max_bytes and self._entries:
            (_, old), old_out = self._entries.popitem(last=False)
            self.held -= len(old) + len(old_out)
        return out


CACHE = CompressedCache()  # one per server process: every connection shares it


class SharedDeflate(PerMessageDeflate):
    """permessage-deflate whose whole messages come from the shared cache."""

    def encode(self, frame: Frame) -> Frame:
        shareable = (
            self.local_no_context_takeover
            and frame.fin
            and frame.opcode in (Opcode.TEXT, Opcode.BINARY)
            and len(frame.data) >= SHARED_MIN_BYTES
        )
        if not shareable:
            return super().encode(frame)
        data = CACHE.compressed(bytes(frame.data), self.local_max_window_bits)
        return Frame(frame.opcode, data, frame.fin, True, frame.rsv2, frame.rsv3)


class SharedDeflateFactory(ServerPerMessageDeflateFactory):
    """Negotiates permessage-deflate with server_no_context_takeover (so a message's bytes
    do not depend on the connection) and hands out SharedDeflate."""

    def __init__(self) -> None:
        super().__init__(
            server_no_context_takeover=True,
            server_max_window_bits=WINDOW_BITS,
            client_max_window_bits=WINDOW_BITS,
            compress_settings=dict(COMPRESS_SETTINGS),
        )

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, plain = super().process_request_params(params, accepted_extensions)
        shared = SharedDeflate(
            plain.remote_no_context_takeover,
            plain.local_no_context_takeover,
            plain.remote_max_window_bits,
            plain.local_max_window_bits,
            plain.compress_settings,
        )
        return response, shared


def extensions(mode: str) -> list[Any] | None:
    """The server's WebSocket extensions for the `ws_deflate` setting: "shared" (compress
    once), "per_viewer" (uvicorn's own, kept for comparison), "off". None: uvicorn's."""
    if mode == "shared":
        return [SharedDeflateFactory()]
    if mode == "off":
        return []
    return None
