"""HTTP/2 (RFC 9113, h2c) of our own, for the gRPC port: frames, header blocks, stream and
connection state. See `transport.h2.connection` for why it is not the `h2` library."""
