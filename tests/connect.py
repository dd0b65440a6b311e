"""A small client of the Connect protocol for tests, written from its specification.

Unary calls are a POST of the binary request (``application/proto``); a server-streaming
call sends one enveloped request (``application/connect+proto``) and reads enveloped
answers up to the end-of-stream envelope, which carries the error if any. Deliberately
not connect-python's client: the gateway's server is connect-python, and a test that
shares its code with the server could not catch where both read the protocol wrongly.
"""

from __future__ import annotations

import http.client
import json
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any, Final

#: Envelope flag of the end-of-stream message (Connect protocol, "Streaming-Response").
END_STREAM: Final = 0x02


@dataclass
class Reply:
    """One call's answer: HTTP status, headers, Connect code, and the messages received."""

    status: int
    headers: dict[str, str]
    #: ``"ok"`` or the Connect error code (``"permission_denied"``, ...).
    code: str
    message: str = ""
    messages: list[bytes] = field(default_factory=list)

    @property
    def grpc_name(self) -> str:
        """The code as gRPC names it (``PERMISSION_DENIED``; ``canceled`` -> ``CANCELLED``)."""
        return "CANCELLED" if self.code == "canceled" else self.code.upper()


def envelope(data: bytes, flags: int = 0) -> bytes:
    """One message in Connect's streaming framing: flags, big-endian length, bytes."""
    return struct.pack(">BI", flags, len(data)) + data


def _error_of(document: Any) -> tuple[str, str]:
    if isinstance(document, dict) and isinstance(document.get("code"), str):
        return document["code"], str(document.get("message", ""))
    return "unknown", ""


class ConnectClient:
    """Calls to one browser port, over TLS trusting ``ca_pem``."""

    def __init__(self, host: str, port: int, ca_pem: bytes, *, timeout: float = 30) -> None:
        self.host = host
        self.port = port
        self.context = ssl.create_default_context(cadata=ca_pem.decode())
        self.timeout = timeout

    def connection(self) -> http.client.HTTPSConnection:
        """A new connection to the port."""
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=self.timeout
        )

    def _headers(
        self, content_type: str, token: str | None, extra: dict[str, str] | None
    ) -> dict[str, str]:
        headers = {"content-type": content_type, "connect-protocol-version": "1"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        headers.update(extra or {})
        return headers

    def unary(
        self,
        path: str,
        body: bytes,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A unary call; the answer's message (if any) is ``messages[0]``."""
        connection = self.connection()
        try:
            connection.request(
                "POST", path, body=body, headers=self._headers("application/proto", token, headers)
            )
            response = connection.getresponse()
            data = response.read()
            answer = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        if response.status == 200:
            return Reply(200, answer, "ok", messages=[data])
        code, message = _error_of(json.loads(data or b"{}"))
        return Reply(response.status, answer, code, message)

    def stream(
        self,
        path: str,
        body: bytes,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A server-streaming call, read to its end."""
        connection = self.connection()
        try:
            connection.request(
                "POST",
                path,
                body=envelope(body),
                headers=self._headers("application/connect+proto", token, headers),
            )
            response = connection.getresponse()
            answer = {k.lower(): v for k, v in response.getheaders()}
            if response.status != 200:
                code, message = _error_of(json.loads(response.read() or b"{}"))
                return Reply(response.status, answer, code, message)
            messages: list[bytes] = []
            while True:
                prefix = response.read(5)
                if len(prefix) < 5:
                    return Reply(200, answer, "unknown", "the stream ended without its end")
                flags, length = struct.unpack(">BI", prefix)
                data = response.read(length)
                if flags & END_STREAM:
                    end = json.loads(data or b"{}")
                    if "error" in end:
                        code, message = _error_of(end["error"])
                        return Reply(200, answer, code, message, messages)
                    return Reply(200, answer, "ok", messages=messages)
                messages.append(data)
        finally:
            connection.close()
