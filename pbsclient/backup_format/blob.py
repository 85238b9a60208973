"""PBS data blobs (``*.blob``, e.g. ``index.json.blob``): header, CRC-32, optional zstd.

Layout (pbs-datastore/src/file_formats.rs, data_blob.rs)::

    magic [8] || crc32 LE [4] || data                      (uncompressed / zstd)
    magic [8] || crc32 LE [4] || iv [16] || tag [16] || data   (encrypted)

The CRC covers everything after the header. Encrypted blobs can be recognised
and CRC-checked, not decoded: that needs the owner's key, which the portal never has.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import zstandard

from pbsclient.backup_format.errors import BackupFormatError
from pbsclient.backup_format.formats import (
    BLOB_HEADER,
    COMPRESSED_BLOB_MAGIC_1_0,
    ENCR_COMPR_BLOB_MAGIC_1_0,
    ENCRYPTED_BLOB_HEADER,
    ENCRYPTED_BLOB_MAGIC_1_0,
    MAX_BLOB_SIZE,
    UNCOMPRESSED_BLOB_MAGIC_1_0,
)

__all__ = ["Blob", "decode_blob", "parse_blob"]

_KINDS = {
    UNCOMPRESSED_BLOB_MAGIC_1_0: (False, False),
    COMPRESSED_BLOB_MAGIC_1_0: (True, False),
    ENCRYPTED_BLOB_MAGIC_1_0: (False, True),
    ENCR_COMPR_BLOB_MAGIC_1_0: (True, True),
}


@dataclass(frozen=True)
class Blob:
    """A parsed blob: its flags and its payload (still compressed/encrypted as stored)."""

    magic: bytes
    compressed: bool
    encrypted: bool
    crc: int
    payload: bytes

    def data(self) -> bytes:
        """The plain data: zstd-decoded if compressed. Encrypted blobs raise."""
        if self.encrypted:
            raise BackupFormatError("encrypted blob: cannot decode without the key", what="blob")
        if not self.compressed:
            return self.payload
        try:
            # A zstd frame header need not state the content size (a streaming
            # encoder omits it), so decode as a stream, capped at PBS's blob limit.
            reader = zstandard.ZstdDecompressor().stream_reader(self.payload)
            data = reader.read(MAX_BLOB_SIZE + 1)
        except zstandard.ZstdError as exc:
            raise BackupFormatError(f"zstd data is corrupt ({exc})", what="blob") from None
        if len(data) > MAX_BLOB_SIZE:
            raise BackupFormatError(f"decoded data larger than {MAX_BLOB_SIZE} bytes", what="blob")
        return data


def parse_blob(raw: bytes) -> Blob:
    """Check magic, size and CRC of a raw blob (DataBlob::load_from_reader) and split it."""
    if len(raw) < BLOB_HEADER.size:
        raise BackupFormatError(f"blob too small ({len(raw)} bytes).", what="blob")
    magic = bytes(raw[:8])
    kind = _KINDS.get(magic)
    if kind is None:
        raise BackupFormatError("unable to parse raw blob - wrong magic", what="blob")
    compressed, encrypted = kind
    header = ENCRYPTED_BLOB_HEADER if encrypted else BLOB_HEADER
    if len(raw) < header.size:
        raise BackupFormatError(f"encrypted blob too small ({len(raw)} bytes).", what="blob")
    _, crc = BLOB_HEADER.unpack_from(raw)
    computed = zlib.crc32(memoryview(raw)[header.size :])
    if computed != crc:
        raise BackupFormatError(
            f"Data blob has wrong CRC checksum (stored {crc:08x}, computed {computed:08x}).", what="blob"
        )
    return Blob(magic=magic, compressed=compressed, encrypted=encrypted, crc=crc, payload=bytes(raw[header.size :]))


def decode_blob(raw: bytes) -> bytes:
    """Parse and decode an unencrypted blob in one step."""
    return parse_blob(raw).data()
