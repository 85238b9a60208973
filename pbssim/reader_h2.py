"""HTTP/2 for an upgraded reader connection (the simulator's side of the reader protocol).

After ``101 Switching Protocols`` PBS serves the reader API over HTTP/2 on the
same TLS connection (src/api2/reader/mod.rs: hyper's http2 server with 32 MiB
stream and connection windows and frames up to 4 MiB). The requests are
answered by a ``chunk_content.ReaderSession``.
"""

from __future__ import annotations

import socket
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings

from pbssim.chunk_content import ReaderSession

__all__ = ["serve_reader_session"]

# src/api2/reader/mod.rs: window_size = 32 * 1024 * 1024; max_frame_size(4 * 1024 * 1024)
READER_WINDOW = 32 * 2**20
READER_MAX_FRAME = 4 * 2**20


def serve_reader_session(rfile: Any, conn: socket.socket, session: ReaderSession) -> None:
    """Serve one reader session's HTTP/2 requests until the client closes the connection.

    Reads through the handler's buffered ``rfile`` (it may already hold bytes that
    followed the upgrade request) and writes straight to the TLS socket. Bodies
    go out as flow control allows; a window update resumes them.
    """
    h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    h2conn.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: READER_WINDOW,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: READER_MAX_FRAME,
        },
    )
    h2conn.initiate_connection()
    conn.sendall(h2conn.data_to_send())
    pending: dict[int, memoryview] = {}
    while True:
        data = rfile.read1(65536)
        if not data:
            return
        for event in h2conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                fields = dict(event.headers or [])
                target = str(fields.get(":path", ""))
                path, _, query = target.partition("?")
                status, headers, body = session.handle(str(fields.get(":method", "")), path, query)
                response = [(":status", str(status)), ("content-length", str(len(body)))]
                response += [(key.lower(), value) for key, value in headers.items()]
                h2conn.send_headers(event.stream_id, response, end_stream=not body)
                if body:
                    pending[event.stream_id] = memoryview(body)
            elif isinstance(event, h2.events.DataReceived):
                h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                pending.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                conn.sendall(h2conn.data_to_send())
                return
        for stream_id in list(pending):
            body = pending[stream_id]
            while body:
                room = min(h2conn.local_flow_control_window(stream_id), h2conn.max_outbound_frame_size, len(body))
                if room <= 0:
                    break
                h2conn.send_data(stream_id, body[:room].tobytes(), end_stream=room == len(body))
                body = body[room:]
            if body:
                pending[stream_id] = body
            else:
                del pending[stream_id]
        conn.sendall(h2conn.data_to_send())
