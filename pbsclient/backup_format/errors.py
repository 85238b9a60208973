"""The one error every parser in this package raises."""

from __future__ import annotations

__all__ = ["BackupFormatError"]


class BackupFormatError(ValueError):
    """A PBS file (blob, manifest, index) is malformed: bad magic, CRC, checksum or size.

    ``what`` names the file (or "blob"/"fixed index"/...) so a message can say
    which download was broken.
    """

    def __init__(self, message: str, *, what: str = "") -> None:
        self.what = what
        super().__init__(f"{what}: {message}" if what else message)
