"""fstab(5) entries, as a list of dicts.

The swap task reads which swap devices the server has (and whether they are already `.eli`) from
here before it rewrites them for GELI one-time encryption.
"""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand


def _unescape(field: str) -> str:
    # fstab(5) writes a space inside a field as \040
    return field.replace("\\040", " ")


class FstabEntries(FactBase):
    """
    Returns the entries of an fstab file in order, comments and blank lines left out.

    + path: the file (``/etc/fstab`` unless told otherwise)

    .. code:: python

        [{"device": "/dev/ada0p3", "mountpoint": "none", "fstype": "swap", "options": "sw",
          "dump": 0, "pass": 0}]

    A missing file has no entries: ``[]``. Missing dump and pass fields count as 0.
    """

    def command(self, path: str = "/etc/fstab") -> StringCommand:
        return StringCommand("[ ! -f", QuoteString(path), "] || cat", QuoteString(path))

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        entries = []
        for line in output:
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = [_unescape(field) for field in text.split()]
            if len(fields) < 4:
                continue
            dump = int(fields[4]) if len(fields) > 4 and fields[4].isdigit() else 0
            passno = int(fields[5]) if len(fields) > 5 and fields[5].isdigit() else 0
            entries.append(
                {
                    "device": fields[0],
                    "mountpoint": fields[1],
                    "fstype": fields[2],
                    "options": fields[3],
                    "dump": dump,
                    "pass": passno,
                },
            )
        return entries
