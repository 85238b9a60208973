"""Constants and layouts of PBS's on-disk/wire formats, as in Proxmox Backup Server 4.2.

Every value below is copied from the PBS 4.2 sources (repository
proxmox-backup, crate ``pbs-datastore``); the comment on each names the file.
Do not change them: PBS says "PLEASE DO NOT MODIFY THOSE MAGIC VALUES" too.
"""

from __future__ import annotations

import struct

# --- magic numbers: pbs-datastore/src/file_formats.rs (each is sha256(<text>)[0..8]) ------------

# pbs-datastore/src/file_formats.rs: sha256(b"Proxmox Backup uncompressed blob v1.0")[0..8]
UNCOMPRESSED_BLOB_MAGIC_1_0 = bytes([66, 171, 56, 7, 190, 131, 112, 161])
# pbs-datastore/src/file_formats.rs: sha256(b"Proxmox Backup zstd compressed blob v1.0")[0..8]
COMPRESSED_BLOB_MAGIC_1_0 = bytes([49, 185, 88, 66, 111, 182, 163, 127])
# pbs-datastore/src/file_formats.rs: sha256(b"Proxmox Backup encrypted blob v1.0")[0..8]
ENCRYPTED_BLOB_MAGIC_1_0 = bytes([123, 103, 133, 190, 34, 45, 76, 240])
# pbs-datastore/src/file_formats.rs: sha256(b"Proxmox Backup zstd compressed encrypted blob v1.0")[0..8]
ENCR_COMPR_BLOB_MAGIC_1_0 = bytes([230, 89, 27, 191, 11, 191, 216, 11])
# pbs-datastore/src/file_formats.rs: sha256(b"Proxmox Backup fixed sized chunk index v1.0")[0..8]
FIXED_SIZED_CHUNK_INDEX_1_0 = bytes([47, 127, 65, 237, 145, 253, 15, 205])
# pbs-datastore/src/file_formats.rs: sha256(b"Proxmox Backup dynamic sized chunk index v1.0")[0..8]
DYNAMIC_SIZED_CHUNK_INDEX_1_0 = bytes([28, 145, 78, 165, 25, 186, 179, 205])

# --- data blobs: pbs-datastore/src/file_formats.rs (DataBlobHeader, EncryptedDataBlobHeader) ----

# pbs-datastore/src/file_formats.rs: DataBlobHeader { magic: [u8; 8], crc: [u8; 4] }, packed;
# the CRC is CRC-32 (crc32fast, the IEEE polynomial) of everything after the header,
# little-endian (data_blob.rs: compute_crc / set_crc use to_le_bytes).
BLOB_HEADER = struct.Struct("<8sI")
# pbs-datastore/src/file_formats.rs: EncryptedDataBlobHeader { head, iv: [u8; 16], tag: [u8; 16] }
ENCRYPTED_BLOB_HEADER = struct.Struct("<8sI16s16s")
# pbs-datastore/src/data_blob.rs: const MAX_BLOB_SIZE: usize = 128 * 1024 * 1024
MAX_BLOB_SIZE = 128 * 1024 * 1024
# pbs-datastore/src/data_blob.rs: DataBlob::encode compresses with zstd level 1 and keeps the
# compressed form only when it is not larger than the input.
BLOB_ZSTD_LEVEL = 1

# --- index files: pbs-datastore/src/fixed_index.rs, dynamic_index.rs -----------------------------

# pbs-datastore/src/fixed_index.rs: FixedIndexHeader (repr(C)) = magic [u8; 8], uuid [u8; 16],
# ctime i64, index_csum [u8; 32], size u64, chunk_size u64, reserved [u8; 4016]; "overall size
# is one page (4096 bytes)". Integers are little-endian (the reader applies from_le). The
# loongarch64 port pads to 16384 bytes; every release architecture of PBS 4.2 uses 4096.
FIXED_INDEX_HEADER = struct.Struct("<8s16sq32sQQ")
# pbs-datastore/src/dynamic_index.rs: DynamicIndexHeader (repr(C)) = magic [u8; 8],
# uuid [u8; 16], ctime i64, index_csum [u8; 32], reserved [u8; 4032]: also one 4096-byte page.
DYNAMIC_INDEX_HEADER = struct.Struct("<8s16sq32s")
# fixed_index.rs / dynamic_index.rs: static_assert_size!(..., 4096)
INDEX_HEADER_SIZE = 4096
# pbs-datastore/src/fixed_index.rs: the index after the header is digest1||digest2||...,
# 32 bytes each (SHA-256 of the chunk's uncompressed data).
DIGEST_SIZE = 32
# pbs-datastore/src/dynamic_index.rs: DynamicEntry { end_le: u64, digest: [u8; 32] } (repr(C)),
# 40 bytes: the chunk's end offset in the archive (little-endian), then its digest.
DYNAMIC_ENTRY = struct.Struct("<Q32s")

# --- the manifest: pbs-datastore/src/manifest.rs, pbs-datastore/src/lib.rs -----------------------

# proxmox-rs pbs-api-types/src/datastore.rs (MANIFEST_BLOB_NAME): the manifest is stored as this blob in every snapshot.
MANIFEST_BLOB_NAME = "index.json.blob"
# pbs-datastore/src/manifest.rs: FileInfo.crypt_mode (CryptMode, kebab-case): "none",
# "encrypt", "sign-only"; missing in manifests older than 0.8.0 (then "none").
CRYPT_MODES = ("none", "encrypt", "sign-only")

__all__ = [
    "BLOB_HEADER",
    "BLOB_ZSTD_LEVEL",
    "COMPRESSED_BLOB_MAGIC_1_0",
    "CRYPT_MODES",
    "DIGEST_SIZE",
    "DYNAMIC_ENTRY",
    "DYNAMIC_INDEX_HEADER",
    "DYNAMIC_SIZED_CHUNK_INDEX_1_0",
    "ENCRYPTED_BLOB_HEADER",
    "ENCRYPTED_BLOB_MAGIC_1_0",
    "ENCR_COMPR_BLOB_MAGIC_1_0",
    "FIXED_INDEX_HEADER",
    "FIXED_SIZED_CHUNK_INDEX_1_0",
    "INDEX_HEADER_SIZE",
    "MANIFEST_BLOB_NAME",
    "MAX_BLOB_SIZE",
    "UNCOMPRESSED_BLOB_MAGIC_1_0",
]
