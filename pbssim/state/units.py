"""systemd unit name escaping, as PBS uses it for job ids in task UPIDs."""

from __future__ import annotations


def escape_unit(value: str) -> str:
    """``proxmox_sys::systemd::escape_unit``, as UPIDs encode worker ids (``:`` -> ``\\x3a``)."""
    out = []
    for index, byte in enumerate(value.encode()):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif (index == 0 and char == ".") or not (char in "_." or (char.isascii() and char.isalnum())):
            out.append(f"\\x{byte:02x}")
        else:
            out.append(char)
    return "".join(out)


def unescape_unit(value: str) -> str:
    raw = bytearray()
    index = 0
    while index < len(value):
        if value.startswith("\\x", index) and index + 4 <= len(value):
            raw.append(int(value[index + 2 : index + 4], 16))
            index += 4
        elif value[index] == "-":
            raw.append(ord("/"))
            index += 1
        else:
            raw.extend(value[index].encode())
            index += 1
    return raw.decode(errors="replace")
