"""Parsers for Proxmox Backup Server's on-disk/wire formats (PBS 4.2), without Django.

- ``blob``: data blobs (magic, CRC-32, zstd) such as ``index.json.blob``;
- ``manifest``: the snapshot manifest inside ``index.json.blob``;
- ``index``: fixed (``.fidx``) and dynamic (``.didx``) chunk indexes;
- ``compact``: chunk references as numpy uint64 keys plus uint32 sizes;
- ``formats``: every magic number and layout, each citing the PBS source file.
"""

from pbsclient.backup_format.blob import Blob, decode_blob, parse_blob
from pbsclient.backup_format.compact import ChunkRefs, digest_key, digest_keys
from pbsclient.backup_format.errors import BackupFormatError
from pbsclient.backup_format.formats import MANIFEST_BLOB_NAME
from pbsclient.backup_format.index import (
    ChunkIndex,
    index_kind,
    parse_dynamic_index,
    parse_fixed_index,
    parse_index,
)
from pbsclient.backup_format.manifest import Manifest, ManifestFile, parse_manifest, parse_manifest_json

__all__ = [
    "MANIFEST_BLOB_NAME",
    "BackupFormatError",
    "Blob",
    "ChunkIndex",
    "ChunkRefs",
    "Manifest",
    "ManifestFile",
    "decode_blob",
    "digest_key",
    "digest_keys",
    "index_kind",
    "parse_blob",
    "parse_dynamic_index",
    "parse_fixed_index",
    "parse_index",
    "parse_manifest",
    "parse_manifest_json",
]
