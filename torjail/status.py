"""One jail's state as the operator needs it at a glance: reachable, image, jail, tor and (for a relay) its
accounting and signing certificate, pf and swap, and what to do next when something is wrong. An onion-service
jail's row has no accounting ("no accounting") and no certificate.

Everything comes from the server: pyinfra facts for the host, the jail's tor over its control socket
(torjail.torcontrol). A value that was not had is None and shows as "?" (or "unknown"), never as a zero.
"""

from __future__ import annotations

import calendar
import time

from pyinfra.facts.files import File

from torjail import identity, torcontrol
from torjail.freebsd.geli import GeliProviders
from torjail.freebsd.jail import Jails
from torjail.freebsd.pf import PfStatus
from torjail.freebsd.service import ServiceRunning
from torjail.freebsd.swap import SwapDevices
from torjail.procedures.torkeys import SigningCertExpiry
from torjail.tasks.keys import keys_directory

COLUMNS = ("host", "reachable", "image", "jail", "tor", "version", "hibernation", "read", "written", "left",
           "period end", "exhausted at", "cert expires", "pf", "swap", "next")


def tor_time(text):
    """Seconds since the epoch of a time tor reports ("YYYY-MM-DD HH:MM:SS", UTC), or None."""
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))
    except (TypeError, ValueError):
        return None


def usage(accounting, rule):
    """{"start", "end", "used", "left", "allowance"} of the period by accounting_rule (sum: read + written; max:
    the larger; in: read; out: written), from tor's answers only; None when tor did not give what it needs."""
    spent, left = accounting["bytes"], accounting["bytes_left"]
    start, end = tor_time(accounting["interval_start"]), tor_time(accounting["interval_end"])
    if not accounting["enabled"] or spent is None or left is None or start is None or end is None or end <= start:
        return None
    used = {"sum": spent["read"] + spent["written"], "max": max(spent["read"], spent["written"]),
            "in": spent["read"], "out": spent["written"]}[rule]
    remaining = {"sum": left["read"], "max": min(left["read"], left["written"]), "in": left["read"],
                 "out": left["written"]}[rule]
    return {"start": start, "end": end, "used": used, "left": remaining, "allowance": used + remaining}


def exhaustion(period, now):
    """When the allowance runs out at the period's average rate so far (seconds since the epoch), or None: no
    traffic yet, or no period."""
    if period is None or period["used"] <= 0 or now <= period["start"]:
        return None
    rate = period["used"] / (now - period["start"])
    return now + period["left"] / rate


def _swap(devices):
    if not devices:
        return "none"
    clear = [device["device"] for device in devices if not device["device"].endswith(".eli")]
    return f"clear: {' '.join(clear)}" if clear else "encrypted"


def collect(host, settings, now=None):
    """The status of one jail of a connected host (a relay's Settings or an OnionService) as a dict (JSON-ready);
    every answer not had is None."""
    now = time.time() if now is None else now
    row = {"host": settings.relay_name, "reachable": True, "error": None}
    if settings.eli_device in host.get_fact(GeliProviders):
        row["image"] = "unlocked"
    else:
        row["image"] = "locked" if host.get_fact(File, path=settings.image_path) else "absent"
    row["jail"] = settings.jail_name in host.get_fact(Jails)
    row["tor"] = bool(row["jail"]) and host.get_fact(ServiceRunning, service="tor", jail=settings.jail_name)
    answers = torcontrol.ask_tor(host, settings.jail_name) if row["tor"] else None
    row["version"] = answers["version"] if answers else None
    row["accounting"] = answers["accounting"] if answers else torcontrol.parse_accounting({})
    row["tor_error"] = answers["error"] if answers else None
    relay = settings.kind == "relay"  # an onion service's tor keeps no accounting and has no signing certificate
    row["period"] = usage(row["accounting"], settings.torrc_traffic["AccountingRule"]) if relay else None
    row["exhausted_at"] = exhaustion(row["period"], now)
    row["cert_expires"] = None
    if relay and settings.offline_master_key and row["jail"]:
        row["cert_expires"] = host.get_fact(SigningCertExpiry, path=f"{keys_directory(settings)}/"
                                                                     f"{identity.SIGNING_CERT}")
    row["pf"] = host.get_fact(PfStatus)["enabled"]
    row["swap"] = _swap(host.get_fact(SwapDevices))
    row["now"] = now
    row["next"] = advice(row, settings)
    return row


def unreachable(name, error):
    """The row of a relay pyinfra could not connect to."""
    row = {"host": name, "reachable": False, "error": error, "image": None, "jail": None, "tor": None,
           "version": None, "accounting": torcontrol.parse_accounting({}), "tor_error": None, "period": None,
           "exhausted_at": None, "cert_expires": None, "pf": None, "swap": None, "now": time.time()}
    row["next"] = advice(row, None)
    return row


def unreadable(name, error):
    """The row of a relay that answered, but with something the status could not read (a fact it cannot parse):
    one relay's odd answer must not stop the report on the others."""
    row = {**unreachable(name, error), "reachable": True}
    row["next"] = advice(row, None)
    return row


def advice(row, settings):
    """What to do next, most urgent first (empty when all is well)."""
    if not row["reachable"]:
        return [f"unreachable ({row['error']}): check the server and its SSH access"]
    if row["image"] is None and row["error"]:
        return [f"status unreadable ({row['error']}): run `pyinfra inventory.py deploy.py --dry` on it to see why"]
    if row["image"] == "absent":
        return ["not deployed: run pyinfra inventory.py deploy.py"]
    if row["image"] == "locked":
        return ["locked: run unlock.py"]
    todo = []
    if not row["jail"]:
        todo.append("jail stopped: run unlock.py")
    elif not row["tor"]:
        todo.append(f"tor stopped: run `jexec {settings.jail_name} service tor start`, then read its notices.log")
    elif row["tor_error"]:
        todo.append(f"tor did not answer ({row['tor_error']})")
    accounting = row["accounting"]
    if accounting["hibernating"] in ("soft", "hard"):
        todo.append(f"hibernating ({accounting['hibernating']}) until the period ends: raise accounting_max "
                    "or lower bandwidth_rate")
    elif row["period"] and row["exhausted_at"] and row["exhausted_at"] < row["period"]["end"]:
        todo.append("the allowance runs out before the period ends at this rate: lower bandwidth_rate")
    expires = row["cert_expires"]
    if settings.kind == "relay" and settings.offline_master_key and row["jail"]:
        if expires is None:
            todo.append("no signing certificate: run renew_keys.py")
        elif expires < row["now"] + settings.signing_key_lifetime_days * 86400 / 2:
            todo.append(f"signing certificate expires {when(expires)}: run renew_keys.py")
    if row["pf"] is False:
        todo.append("pf disabled: run deploy.py")
    if row["swap"] and row["swap"].startswith("clear"):
        todo.append("swap not encrypted: run deploy.py, then reboot")
    return todo


def when(seconds):
    """A time as "YYYY-MM-DD HH:MM UTC", or "?" when not known."""
    return "?" if seconds is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def amount(count):
    """Bytes in binary units (tor's GBytes are GiB), or "?"."""
    if count is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return "?"


def _flag(value, yes, no):
    return "?" if value is None else (yes if value else no)


def cells(row):
    """The row's table cells, in COLUMNS order."""
    accounting, period = row["accounting"], row["period"]
    spent = accounting["bytes"] or {}
    if not accounting["enabled"] and accounting["enabled"] is not None:
        exhausted = "no accounting"
    elif period is None:
        exhausted = "?"
    elif row["exhausted_at"] is None:
        exhausted = "no traffic yet"
    else:
        exhausted = when(row["exhausted_at"]) if row["exhausted_at"] < period["end"] else "not this period"
    return (row["host"], _flag(row["reachable"], "yes", "no"), row["image"] or "?",
            _flag(row["jail"], "up", "down"), _flag(row["tor"], "up", "down"), row["version"] or "?",
            accounting["hibernating"] or "?", amount(spent.get("read")), amount(spent.get("written")),
            amount(period["left"]) if period else "?", when(period["end"]) if period else "?", exhausted,
            when(row["cert_expires"]) if row["cert_expires"] else "-", _flag(row["pf"], "enabled", "disabled"),
            row["swap"] or "?", "; ".join(row["next"]) or "ok")


def table(rows):
    """The rows as a text table with a header, columns padded to their widest cell."""
    lines = [COLUMNS] + [cells(row) for row in rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)
