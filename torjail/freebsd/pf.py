"""The packet filter (pfctl(8)): whether pf is loaded and enabled.

Loading a ruleset safely (check, keep the last good one, roll back unless a fresh SSH login works)
belongs with the firewall task; this module gives it the state to start from.
"""

from __future__ import annotations

from pyinfra.api import FactBase


class PfStatus(FactBase):
    """
    Returns whether pf is loaded and enabled, from the first line of ``pfctl -s info``.

    .. code:: python

        {"loaded": True, "enabled": True, "debug": "Urgent"}

    Without pf.ko there is no /dev/pf and pfctl would fail: then ``loaded`` and ``enabled`` are False.
    """

    def command(self) -> str:
        return "if [ -e /dev/pf ]; then pfctl -s info; fi"

    def requires_command(self) -> str:
        return "pfctl"

    @staticmethod
    def default() -> dict:
        return {"loaded": False, "enabled": False, "debug": None}

    def process(self, output: list[str]) -> dict:
        status = {"loaded": True, "enabled": False, "debug": None}
        for line in output:
            if line.startswith("Status:"):
                words = line.split()
                status["enabled"] = len(words) > 1 and words[1] == "Enabled"
                if "Debug:" in words and words.index("Debug:") + 1 < len(words):
                    status["debug"] = words[words.index("Debug:") + 1]
                break
        return status
