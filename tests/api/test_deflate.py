"""permessage-deflate compressed once for every viewer (server/deflate.py)."""

from __future__ import annotations

import json

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode

from boundarylab.server import deflate


def _pair() -> tuple[deflate.SharedDeflate, object]:
    """A server extension as a server negotiates it, and the client's matching one."""
    client_factory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    offer = client_factory.get_request_params()
    response, server_side = deflate.SharedDeflateFactory().process_request_params(offer, [])
    client_side = client_factory.process_response_params(response, [])
    assert isinstance(server_side, deflate.SharedDeflate)
    return server_side, client_side


def test_one_message_to_many_viewers_is_compressed_once_and_each_decodes_it() -> None:
    frame_text = json.dumps({"type": "boundary", "z": list(range(3000))}).encode()
    before = deflate.CACHE.compressions
    viewers = [_pair() for _ in range(20)]
    for _ in range(3):  # every viewer decodes every message, context or not
        for server_side, client_side in viewers:
            sent = server_side.encode(Frame(Opcode.TEXT, frame_text))
            assert sent.rsv1 and len(sent.data) < len(frame_text) / 3
            assert client_side.decode(sent).data == frame_text  # type: ignore[attr-defined]
    assert deflate.CACHE.compressions == before + 1


def test_the_cache_forgets_past_its_byte_budget() -> None:
    cache = deflate.CompressedCache(max_bytes=50_000)
    for i in range(20):
        cache.compressed(bytes([i]) * 10_000, 12)
    assert cache.held <= 50_000 and cache.compressions == 20
    cache.compressed(bytes([19]) * 10_000, 12)  # the latest is still there
    assert cache.compressions == 20
