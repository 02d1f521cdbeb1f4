"""HTTP/2 frames (RFC 9113 §4, §6): constants, the frames the server writes, and the parts
of received payloads (settings, padding, priority) it reads."""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types (§6) and flags
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20

# error codes (§7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x8, 0x9
ENHANCE_YOUR_CALM = 0xB

# settings (§6.5.2)
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5

DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384  # also ours: we never announce a larger one
MAX_WINDOW = 2**31 - 1

FRAME_HEAD = struct.Struct(">BHBBI")  # length (24 bits as 8 + 16), type, flags, stream id
_SETTING = struct.Struct(">HI")
_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")


class H2Error(Exception):
    """A connection error (§5.4.1): the connection ends with GOAWAY and this code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class StreamError(Exception):
    """A stream error (§5.4.2): that stream ends with RST_STREAM and this code, the
    connection lives on."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return FRAME_HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, stream_id) + payload


def settings(values: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in values.items()))


SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _U32.pack(code))


def goaway(last_stream_id: int, code: int) -> bytes:
    return frame(GOAWAY, 0, 0, _TWO_U32.pack(last_stream_id, code))


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    if len(payload) % 6:
        raise H2Error(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), 6)]


def u32(payload: bytes) -> int:
    """The 31-bit value of a 4-byte payload (WINDOW_UPDATE increment, stream dependency)."""
    return _U32.unpack_from(payload)[0] & 0x7FFFFFFF


def error_code(payload: bytes, offset: int = 0) -> int:
    return _U32.unpack_from(payload, offset)[0]


def unpad(flags: int, payload: bytes, priority: bool = False) -> bytes:
    """A DATA or HEADERS payload without its padding (and priority fields)."""
    start, pad = 0, 0
    if flags & PADDED:
        if not payload:
            raise H2Error(PROTOCOL_ERROR, "padded frame without a pad length")
        pad, start = payload[0], 1
    if priority and flags & PRIORITY_FLAG:
        start += 5
    if start + pad > len(payload):
        raise H2Error(PROTOCOL_ERROR, "padding longer than the frame")
    return payload[start:len(payload) - pad] if start or pad else payload


def dependency(flags: int, payload: bytes) -> int:
    """The stream a HEADERS frame with the PRIORITY flag depends on (0 without the flag)."""
    if not flags & PRIORITY_FLAG:
        return 0
    start = 1 if flags & PADDED else 0
    return u32(payload[start:start + 4]) if len(payload) >= start + 4 else 0
