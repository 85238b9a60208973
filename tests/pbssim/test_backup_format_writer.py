"""The simulator's writer of PBS formats, checked by the portal's parsers and by the layouts."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

import pytest

from pbsclient import backup_format as reader
from pbssim import backup_format as writer

UUID = bytes(range(16, 32))


def _digest(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "little")).digest()


def test_the_parser_reads_the_fixed_index_the_simulator_writes() -> None:
    digests = [_digest(i) for i in range(5)]
    written = writer.write_fixed_index(
        "drive-scsi0.img.fidx", digests, size=4 * 2**22 + 17, chunk_size=2**22, uuid=UUID, ctime=1_700_000_123
    )
    parsed = reader.parse_index(written.name, written.raw)
    assert parsed.chunks() == [*[(d, 2**22) for d in digests[:4]], (digests[4], 17)]
    assert (parsed.uuid, parsed.ctime, parsed.index_csum) == (UUID, 1_700_000_123, written.index_csum)
    assert parsed.size == written.size


def test_the_fixed_index_header_is_the_pbs_page_layout() -> None:
    written = writer.write_fixed_index("a.fidx", [_digest(1)], size=100, chunk_size=4096, uuid=UUID, ctime=-5)
    magic, uuid, ctime, csum, size, chunk_size = struct.unpack_from("<8s16sq32sQQ", written.raw)
    assert magic == bytes([47, 127, 65, 237, 145, 253, 15, 205])
    assert (uuid, ctime, size, chunk_size) == (UUID, -5, 100, 4096)
    assert csum == hashlib.sha256(_digest(1)).digest()
    assert written.raw[80:4096] == bytes(4016)  # the reserved rest of the page
    assert len(written.raw) == 4096 + 32


def test_the_parser_reads_the_dynamic_index_the_simulator_writes() -> None:
    chunks = [(_digest(1), 65_536), (_digest(2), 4_000_000), (_digest(1), 65_536)]
    written = writer.write_dynamic_index("root.pxar.didx", chunks, uuid=UUID, ctime=9)
    magic, _uuid, _ctime, csum = struct.unpack_from("<8s16sq32s", written.raw)
    assert magic == bytes([28, 145, 78, 165, 25, 186, 179, 205])
    assert struct.unpack_from("<Q", written.raw, 4096 + 40)[0] == 65_536 + 4_000_000
    assert csum == hashlib.sha256(written.raw[4096:]).digest()
    assert reader.parse_dynamic_index(written.raw).chunks() == chunks
    assert written.size == 4_131_072


def test_blobs_are_compressed_only_when_that_is_smaller() -> None:
    text = b"a" * 5000
    packed = writer.encode_blob(text)
    assert packed[:8] == bytes([49, 185, 88, 66, 111, 182, 163, 127])
    assert struct.unpack_from("<I", packed, 8)[0] == zlib.crc32(packed[12:])
    assert reader.decode_blob(packed) == text
    tiny = writer.encode_blob(b"x")  # zstd's frame header alone is longer than one byte
    assert tiny[:8] == bytes([66, 171, 56, 7, 190, 131, 112, 161])
    assert reader.parse_blob(tiny).data() == b"x"
    assert reader.parse_blob(writer.encode_blob(text, compress=False)).compressed is False


def test_the_manifest_round_trips_and_is_serde_pretty_json() -> None:
    fidx = writer.write_fixed_index("drive-scsi0.img.fidx", [_digest(1)], size=10, chunk_size=4096, uuid=UUID, ctime=1)
    files = [writer.manifest_entry(fidx.name, size=fidx.size, csum=fidx.index_csum)]
    text = writer.manifest_json(backup_type="vm", backup_id="100", backup_time=1_700_000_000, files=files)
    assert text.startswith('{\n  "backup-id": "100",\n  "backup-time": 1700000000,\n  "backup-type": "vm",')
    assert not text.endswith("\n")
    assert json.loads(text)["signature"] is None
    manifest = reader.parse_manifest(
        writer.manifest_blob(backup_type="vm", backup_id="100", backup_time=1_700_000_000, files=files)
    )
    entry = manifest.file("drive-scsi0.img.fidx")
    assert (entry.size, entry.csum, entry.crypt_mode) == (10, fidx.index_csum, "none")


def test_the_writer_refuses_inconsistent_indexes() -> None:
    with pytest.raises(ValueError, match="power of two"):
        writer.write_fixed_index("a.fidx", [], size=0, chunk_size=1000, uuid=UUID, ctime=0)
    with pytest.raises(ValueError, match="do not cover"):
        writer.write_fixed_index("a.fidx", [_digest(1)], size=5000, chunk_size=4096, uuid=UUID, ctime=0)
    with pytest.raises(ValueError, match="positive size"):
        writer.write_dynamic_index("a.didx", [(_digest(1), 0)], uuid=UUID, ctime=0)
