"""The PBS format parsers, fed byte strings built straight from the PBS 4.2 layouts."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

import numpy as np
import pytest
import zstandard

from pbsclient.backup_format import (
    BackupFormatError,
    ChunkRefs,
    digest_key,
    formats,
    parse_blob,
    parse_dynamic_index,
    parse_fixed_index,
    parse_index,
    parse_manifest,
    parse_manifest_json,
)


def _digest(n: int) -> bytes:
    return hashlib.sha256(f"chunk-{n}".encode()).digest()


def _magic(text: str) -> bytes:
    return hashlib.sha256(f"Proxmox Backup {text}".encode()).digest()[:8]


def _fidx(digests: list[bytes], *, size: int, chunk_size: int, csum: bytes | None = None) -> bytes:
    body = b"".join(digests)
    # FixedIndexHeader: magic, uuid, ctime (i64), index_csum, size (u64), chunk_size (u64), pad to 4096
    header = struct.pack(
        "<8s16sq32sQQ",
        _magic("fixed sized chunk index v1.0"),
        bytes(range(16)),
        1_700_000_000,
        csum if csum is not None else hashlib.sha256(body).digest(),
        size,
        chunk_size,
    )
    return header + bytes(4096 - len(header)) + body


def _didx(chunks: list[tuple[bytes, int]]) -> bytes:
    body = b""
    end = 0
    for digest, length in chunks:
        end += length
        body += struct.pack("<Q", end) + digest
    header = struct.pack("<8s16sq32s", _magic("dynamic sized chunk index v1.0"), b"\x07" * 16, 42,
                         hashlib.sha256(body).digest())  # fmt: skip
    return header + bytes(4096 - len(header)) + body


def _blob(magic: bytes, payload: bytes, crc: int | None = None) -> bytes:
    return magic + struct.pack("<I", zlib.crc32(payload) if crc is None else crc) + payload


def test_the_magic_numbers_are_the_sha256_prefixes_pbs_documents() -> None:
    assert _magic("uncompressed blob v1.0") == formats.UNCOMPRESSED_BLOB_MAGIC_1_0
    assert _magic("zstd compressed blob v1.0") == formats.COMPRESSED_BLOB_MAGIC_1_0
    assert _magic("encrypted blob v1.0") == formats.ENCRYPTED_BLOB_MAGIC_1_0
    assert _magic("zstd compressed encrypted blob v1.0") == formats.ENCR_COMPR_BLOB_MAGIC_1_0
    assert _magic("fixed sized chunk index v1.0") == formats.FIXED_SIZED_CHUNK_INDEX_1_0
    assert _magic("dynamic sized chunk index v1.0") == formats.DYNAMIC_SIZED_CHUNK_INDEX_1_0
    assert formats.FIXED_INDEX_HEADER.size == 8 + 16 + 8 + 32 + 8 + 8
    assert formats.DYNAMIC_ENTRY.size == 40


def test_it_reads_a_hand_made_fixed_index_with_a_short_last_chunk() -> None:
    digests = [_digest(i) for i in range(3)]
    index = parse_fixed_index(_fidx(digests, size=2 * 4 * 2**20 + 123, chunk_size=4 * 2**20))
    assert index.kind == "fixed"
    assert index.uuid == bytes(range(16))
    assert index.ctime == 1_700_000_000
    assert index.chunk_size == 4 * 2**20
    assert index.chunks() == [(digests[0], 4 * 2**20), (digests[1], 4 * 2**20), (digests[2], 123)]
    assert index.size == 2 * 4 * 2**20 + 123


def test_a_fixed_index_whose_size_is_a_multiple_keeps_full_chunks() -> None:
    index = parse_fixed_index(_fidx([_digest(1), _digest(2)], size=8192, chunk_size=4096))
    assert index.sizes.tolist() == [4096, 4096]


def test_it_reads_a_hand_made_dynamic_index_into_differences_of_end_offsets() -> None:
    chunks = [(_digest(1), 700_000), (_digest(2), 1_300_000), (_digest(1), 700_000)]
    index = parse_index("root.pxar.didx", _didx(chunks))
    assert index.kind == "dynamic"
    assert index.ctime == 42
    assert index.chunks() == chunks
    assert index.size == 2_700_000


def test_an_empty_dynamic_index_has_no_chunks() -> None:
    index = parse_dynamic_index(_didx([]))
    assert len(index) == 0
    assert index.size == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00" * 100, "index too small (100)"),
        (b"\x01" * 4096, "got unknown magic number"),
    ],
)
def test_it_refuses_a_short_or_foreign_fixed_index(raw: bytes, message: str) -> None:
    with pytest.raises(BackupFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_fixed_index(raw)


def test_it_says_when_a_dynamic_index_is_given_as_a_fixed_one() -> None:
    with pytest.raises(BackupFormatError, match="this is a dynamic index"):
        parse_fixed_index(_didx([(_digest(1), 10)]))


def test_it_refuses_a_fixed_index_with_a_wrong_checksum() -> None:
    raw = _fidx([_digest(1)], size=10, chunk_size=4096, csum=b"\x00" * 32)
    with pytest.raises(BackupFormatError, match="index checksum mismatch"):
        parse_fixed_index(raw)


def test_it_refuses_a_truncated_fixed_index() -> None:
    raw = _fidx([_digest(1), _digest(2)], size=8192, chunk_size=4096)
    with pytest.raises(BackupFormatError, match=r"got unexpected file size \(64 != 32\)"):
        parse_fixed_index(raw[:-32])


def test_it_refuses_a_chunk_size_that_is_no_power_of_two() -> None:
    with pytest.raises(BackupFormatError, match="non-power-of-two chunk size: 3000"):
        parse_fixed_index(_fidx([_digest(1)], size=10, chunk_size=3000))


def test_it_refuses_a_dynamic_index_with_a_torn_entry_or_a_flipped_bit() -> None:
    raw = _didx([(_digest(1), 10), (_digest(2), 20)])
    with pytest.raises(BackupFormatError, match="unexpected file size"):
        parse_dynamic_index(raw[:-1])
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(BackupFormatError, match="index checksum mismatch"):
        parse_dynamic_index(flipped)


def test_it_refuses_a_file_name_that_is_no_index() -> None:
    with pytest.raises(BackupFormatError, match="not an index file"):
        parse_index("qemu-server.conf.blob", b"")


def test_it_reads_uncompressed_and_zstd_blobs() -> None:
    plain = parse_blob(_blob(_magic("uncompressed blob v1.0"), b"hello"))
    assert (plain.compressed, plain.encrypted, plain.data()) == (False, False, b"hello")
    packed = zstandard.ZstdCompressor(level=1).compress(b"x" * 1000)
    blob = parse_blob(_blob(_magic("zstd compressed blob v1.0"), packed))
    assert blob.compressed
    assert blob.data() == b"x" * 1000


def test_it_checks_the_crc_of_an_encrypted_blob_but_cannot_decode_it() -> None:
    # EncryptedDataBlobHeader: magic, crc, iv[16], tag[16]; the CRC covers what follows it.
    rest = b"\x01" * 16 + b"\x02" * 16 + b"ciphertext"
    magic = _magic("encrypted blob v1.0")
    raw = magic + struct.pack("<I", zlib.crc32(b"ciphertext")) + rest
    blob = parse_blob(raw)
    assert blob.encrypted
    assert not blob.compressed
    with pytest.raises(BackupFormatError, match="cannot decode without the key"):
        blob.data()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"short", r"blob too small \(5 bytes\)"),
        (b"\x00" * 8 + b"\x00" * 8, "wrong magic"),
        (_blob(_magic("uncompressed blob v1.0"), b"data", crc=1), "wrong CRC checksum"),
        (_blob(_magic("encrypted blob v1.0"), b"x"), r"encrypted blob too small \(13 bytes\)"),
        (_blob(_magic("zstd compressed blob v1.0"), b"not zstd"), "zstd data is corrupt"),
    ],
)
def test_it_refuses_broken_blobs(raw: bytes, message: str) -> None:
    with pytest.raises(BackupFormatError, match=message):
        parse_blob(raw).data()


def _manifest_dict() -> dict[str, object]:
    return {
        "backup-type": "vm",
        "backup-id": "100",
        "backup-time": 1_700_000_000,
        "files": [
            {"filename": "qemu-server.conf.blob", "crypt-mode": "none", "size": 400, "csum": "ab" * 32},
            {"filename": "drive-scsi0.img.fidx", "crypt-mode": "none", "size": 2**34, "csum": "cd" * 32},
            {"filename": "root.pxar.didx", "size": 5, "csum": "ef" * 32},
        ],
        "unprotected": {"chunk_upload_stats": {"count": 3}},
        "signature": None,
    }


def test_it_reads_a_manifest_blob_and_lists_its_index_files() -> None:
    text = json.dumps(_manifest_dict(), indent=2).encode()
    manifest = parse_manifest(_blob(_magic("zstd compressed blob v1.0"), zstandard.compress(text, 1)))
    assert (manifest.backup_type, manifest.backup_id, manifest.backup_time) == ("vm", "100", 1_700_000_000)
    assert [f.filename for f in manifest.index_files()] == ["drive-scsi0.img.fidx", "root.pxar.didx"]
    assert manifest.file("root.pxar.didx").crypt_mode == "none"  # the pre-0.8 default
    assert manifest.file("drive-scsi0.img.fidx").csum == bytes.fromhex("cd" * 32)
    with pytest.raises(BackupFormatError, match=r"manifest does not contain file 'x\.fidx'"):
        manifest.file("x.fidx")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": "x"}, "'files' is missing"),
        ({"backup-time": "now"}, "'backup-time' is missing or not a int"),
        ({"files": [{"filename": "a.fidx", "size": 1, "csum": "zz"}]}, "malformed csum"),
        ({"files": [{"filename": "a.fidx", "size": -1, "csum": "00" * 32}]}, "negative size"),
        ({"files": [{"filename": "a.fidx", "size": 1, "csum": "00" * 32, "crypt-mode": "x"}]}, "unknown crypt-mode"),
    ],
)
def test_it_refuses_malformed_manifests(change: dict[str, object], message: str) -> None:
    with pytest.raises(BackupFormatError, match=message):
        parse_manifest_json(json.dumps({**_manifest_dict(), **change}))


def test_compact_keys_are_the_big_endian_first_eight_digest_bytes() -> None:
    digests = [_digest(i) for i in range(4)]
    index = parse_fixed_index(_fidx(digests, size=4 * 4096, chunk_size=4096))
    refs = index.compact()
    assert refs.keys.dtype == np.uint64
    assert refs.sizes.dtype == np.uint32
    assert refs.keys.tolist() == [struct.unpack(">Q", d[:8])[0] for d in digests]
    # Big-endian keys sort like the digests (PBS's own chunk order).
    assert sorted(refs.keys.tolist()) == [digest_key(d) for d in sorted(digests)]
    assert refs.keys.tolist() == [digest_key(d) for d in digests]


def test_compact_refs_deduplicate_across_archives() -> None:
    a = parse_dynamic_index(_didx([(_digest(1), 100), (_digest(2), 200), (_digest(1), 100)])).compact()
    b = parse_dynamic_index(_didx([(_digest(2), 200), (_digest(3), 300)])).compact()
    both = ChunkRefs.concat([a, b])
    assert both.total_bytes() == 900
    assert both.distinct().total_bytes() == 600
    assert len(both.distinct()) == 3
