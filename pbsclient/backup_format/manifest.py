"""The snapshot manifest (``index.json.blob``): a blob holding JSON.

Shape (pbs-datastore/src/manifest.rs, ``BackupManifest`` / ``FileInfo``, kebab-case)::

    {"backup-type": "vm", "backup-id": "100", "backup-time": 1700000000,
     "files": [{"filename": "drive-scsi0.img.fidx", "crypt-mode": "none",
                "size": 34359738368, "csum": "<64 hex>"}, ...],
     "unprotected": {...}, "signature": null}

For an index file ``size`` is the archive's (uncompressed) byte size and
``csum`` the index checksum from its header (src/api2/backup/environment.rs
compares both when the writer closes); for a blob, its raw size and SHA-256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pbsclient.backup_format.blob import decode_blob
from pbsclient.backup_format.errors import BackupFormatError
from pbsclient.backup_format.formats import CRYPT_MODES

__all__ = ["Manifest", "ManifestFile", "parse_manifest", "parse_manifest_json"]


@dataclass(frozen=True)
class ManifestFile:
    """One ``files`` entry: name, crypt mode, size in bytes, SHA-256 (32 bytes)."""

    filename: str
    crypt_mode: str
    size: int
    csum: bytes

    @property
    def is_index(self) -> bool:
        return self.filename.endswith((".fidx", ".didx"))


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; ``unprotected`` is kept as PBS stored it."""

    backup_type: str
    backup_id: str
    backup_time: int
    files: tuple[ManifestFile, ...]
    unprotected: dict[str, Any]
    signature: str | None

    def index_files(self) -> list[ManifestFile]:
        """The fixed and dynamic index files, in manifest order."""
        return [item for item in self.files if item.is_index]

    def file(self, name: str) -> ManifestFile:
        for item in self.files:
            if item.filename == name:
                return item
        # pbs-datastore/src/manifest.rs: lookup_file_info
        raise BackupFormatError(f"manifest does not contain file '{name}'", what="manifest")


def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BackupFormatError(f"'{key}' is missing or not a {getattr(kind, '__name__', kind)}", what="manifest")
    return value


def _file(entry: Any) -> ManifestFile:
    if not isinstance(entry, dict):
        raise BackupFormatError("a 'files' entry is not an object", what="manifest")
    name = _field(entry, "filename", str)
    # manifest.rs: crypt-mode defaults to "none" for backups older than 0.8.0
    crypt_mode = entry.get("crypt-mode", "none")
    if crypt_mode not in CRYPT_MODES:
        raise BackupFormatError(f"file '{name}' has an unknown crypt-mode {crypt_mode!r}", what="manifest")
    size = _field(entry, "size", int)
    if size < 0:
        raise BackupFormatError(f"file '{name}' has a negative size", what="manifest")
    csum_hex = _field(entry, "csum", str)
    try:
        csum = bytes.fromhex(csum_hex)
    except ValueError:
        csum = b""
    if len(csum) != 32:
        raise BackupFormatError(f"file '{name}' has a malformed csum", what="manifest")
    return ManifestFile(filename=name, crypt_mode=crypt_mode, size=size, csum=csum)


def parse_manifest_json(text: bytes | str) -> Manifest:
    """Parse the JSON inside ``index.json.blob`` (BackupManifest::from_data, unsigned part)."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupFormatError(f"not JSON ({exc})", what="manifest") from None
    if not isinstance(data, dict):
        raise BackupFormatError("not a JSON object", what="manifest")
    files = _field(data, "files", list)
    unprotected = data.get("unprotected", {})
    signature = data.get("signature")
    return Manifest(
        backup_type=_field(data, "backup-type", str),
        backup_id=_field(data, "backup-id", str),
        backup_time=_field(data, "backup-time", int),
        files=tuple(_file(entry) for entry in files),
        unprotected=unprotected if isinstance(unprotected, dict) else {},
        signature=signature if isinstance(signature, str) else None,
    )


def parse_manifest(raw_blob: bytes) -> Manifest:
    """Parse a downloaded ``index.json.blob`` (blob checks first, then the JSON)."""
    return parse_manifest_json(decode_blob(raw_blob))
