"""A minimal WebSocket server that pushes a fixed, pre-framed stream as fast as the socket takes it.

Used by bench_stream.py in a separate process, so that the figures measure clients, not a server. It
answers the upgrade, waits for the client's first frame (the subscription) and writes every frame,
then keeps the connection open until the client leaves. Loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
from pathlib import Path

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes([0x81, n])
    elif n < 65536:
        header = bytes([0x81, 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + n.to_bytes(8, "big")
    return header + payload


class Push(asyncio.Protocol):
    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        self.buffer = b""
        self.upgraded = False
        self.sent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.buffer += data
            if b"\r\n\r\n" not in self.buffer:
                return
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.upgraded = True
            data = rest
        if data and not self.sent:  # the subscription frame: push everything
            self.sent = True
            view = memoryview(self.stream)
            for start in range(0, len(view), 1 << 20):
                self.transport.write(view[start : start + (1 << 20)])


async def main() -> None:
    stream = Path(sys.argv[1]).read_bytes()
    server = await asyncio.get_running_loop().create_server(lambda: Push(stream), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
