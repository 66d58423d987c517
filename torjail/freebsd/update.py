"""Patches for a FreeBSD host and its jails: freebsd-update(8) for the base system, pkg-upgrade(8) for packages.

Both are asked first what they would change (the facts), so a dry run lists the files and package versions a
run would install. Asking fetches: `freebsd-update fetch` downloads and stages the patches in its work directory
(/var/db/freebsd-update), `pkg upgrade -n` refreshes the repository catalogue; neither touches the installed
system. freebsd-update refuses `fetch` without a terminal unless told `--not-running-from-cron`, and shows its
lists through $PAGER (less by default), so it runs with PAGER=cat.

A jail's userland is patched from the host (`freebsd-update -b ROOT`), as the handbook does it, so the jail is
stopped first: nothing inside it can move a path while the host writes, and no symlink the jail left may lead
a write out of its root (checked after the stop, before the install). The jail starts again on its patched root.
"""

from __future__ import annotations

import re

from pyinfra import host, logger
from pyinfra.api import FactBase, QuoteString, StringCommand, operation

from torjail.freebsd.jail import while_stopped
from torjail.freebsd.jailfs import links_out_refused
from . import readings

LIST_HEADER = re.compile(r"The following files will be (updated|added|removed) as part of updating to$")
EXIT_STATUS = re.compile(r"^freebsd-update exit (\d+)$")
UP_TO_DATE = re.compile(r"No updates needed to update system to (\S+?)\.?$")
# pkg adds " [REPOSITORY]" to these lines when more than one repository is enabled.
UPGRADED = re.compile(r"^\s+(\S+): (\S+) -> (\S+)(?: \[[^]]+\])?$")
NEW_PACKAGE = re.compile(r"^\s+(\S+): (\S+)(?: \[[^]]+\])?$")


def _freebsd_update(basedir: str | None, release: str | None, *commands: str) -> list:
    args: list = ["env", "PAGER=cat", "freebsd-update", "--not-running-from-cron"]
    if basedir is not None:
        args += ["-b", QuoteString(basedir), "--currently-running", QuoteString(release)]
    return args + list(commands)


class BaseUpdates(FactBase):
    """
    Returns what ``freebsd-update fetch`` staged for a base system: ``{"version": "14.3-RELEASE-p2", "updated": [...],
    "added": [...], "removed": [...], "error": None}``, the lists empty when the system is already at that version.
    When fetch fails (a release past its end of life, an unreachable server), "error" holds what it said, so the
    caller can stop with it before any change.

    + basedir: None for the host, or a jail root (``-b``)
    + release: the release installed in that root (``--currently-running``), e.g. ``14.3-RELEASE``
    """

    def command(self, basedir: str | None = None, release: str | None = None) -> StringCommand:
        return StringCommand(*_freebsd_update(basedir, release, "fetch"), "2>&1;",
                             'echo "freebsd-update exit $?"')

    def process(self, output: list[str]) -> dict:
        found: dict = {"version": None, "updated": [], "added": [], "removed": [], "error": None}
        status = next((int(match.group(1)) for line in output if (match := EXIT_STATUS.match(line.strip()))), 1)
        if status != 0:
            said = [line.strip() for line in output if line.strip() and not EXIT_STATUS.match(line.strip())]
            found["error"] = " ".join(said[-4:]) or f"exit status {status}"
            return found
        current = None
        lines = iter(output)
        for line in lines:
            line = line.rstrip()
            header = LIST_HEADER.match(line)
            if header:
                current = found[header.group(1)]
                found["version"] = next(lines, "").strip().rstrip(":")
            elif (done := UP_TO_DATE.match(line)):
                found["version"] = done.group(1)
            elif current is not None and line.startswith("/"):
                current.append(line)
            else:
                current = None
        return found


def pending(updates: dict) -> list[str]:
    """The files an update would write or remove."""
    return updates["updated"] + updates["added"] + updates["removed"]


def _pkg(jail: str | None) -> list:
    return ["pkg"] + (["-j", QuoteString(jail)] if jail else [])


class PackageUpgrades(FactBase):
    """
    Returns what ``pkg upgrade -n`` would do: ``{name: (installed version or None, new version)}``, packages to
    upgrade and new ones pulled in as dependencies; empty when the packages are up to date.

    + jail: ask for this running jail (``pkg -j``), else for the host

    pkg exits 1 from a dry run that would change something: that is an answer, not a failure.
    """

    def command(self, jail: str | None = None) -> StringCommand:
        return StringCommand(*_pkg(jail), "upgrade", "-n", ";", "status=$?;", "[", "$status", "-le", "1", "]")

    def process(self, output: list[str]) -> dict:
        found, section = {}, None
        for line in output:
            if not line.strip():
                section = None
            elif line.startswith("Installed packages to be UPGRADED:"):
                section = "upgraded"
            elif line.startswith("New packages to be INSTALLED:"):
                section = "installed"
            elif not line[0].isspace():
                section = None
            elif section == "upgraded" and (match := UPGRADED.match(line)):
                found[match.group(1)] = (match.group(2), match.group(3))
            elif section == "installed" and (match := NEW_PACKAGE.match(line)):
                found[match.group(1)] = (None, match.group(2))
        return found


def _show_diff(updates: dict) -> None:
    """With --diff, the files an update writes or removes, as files.put shows its diff."""
    if host.state.config.DIFF:
        host.log(f"Will update to {updates['version']}:", logger.info)
        for kind in ("updated", "added", "removed"):
            for path in updates[kind]:
                logger.info(f"  {kind} {path}")


@operation()
def base_patched(basedir: str | None = None, release: str | None = None):
    """
    Install the patches ``freebsd-update fetch`` staged for the host's base system (``-b`` for another root that
    nothing runs from: a jail root goes through ``jail_userland_patched``).

    + basedir, release: as for the BaseUpdates fact

    **Example:**

    .. code:: python

        update.base_patched()
    """
    updates = readings.fact(BaseUpdates, basedir=basedir, release=release)
    if not pending(updates):
        host.noop(f"{basedir or 'the host'} is at {updates['version']}: no updates needed")
        return
    _show_diff(updates)
    yield StringCommand(*_freebsd_update(basedir, release, "install"))


@operation()
def jail_userland_patched(jail_name: str, config: str, root: str, device: str, release: str):
    """
    Install the patches ``freebsd-update -b ROOT fetch`` staged for a running jail's userland: the jail stops, its
    root is mounted on the host (nosuid) and checked for symlinks leading out, freebsd-update installs, and the
    jail starts again on its root, whatever the install did.

    + jail_name, config: the jail and its jail.conf(5) file
    + root: the jail root on the host
    + device: the device the jail's ``mount`` parameter mounts on the root, e.g. ``/dev/md10.eli``
    + release: the release unpacked in the root, e.g. ``14.3-RELEASE``

    **Example:**

    .. code:: python

        update.jail_userland_patched("tor", "/etc/jail.conf.d/tor.conf", "/var/jails/tor", "/dev/md10.eli",
                                     "14.3-RELEASE")
    """
    updates = readings.fact(BaseUpdates, basedir=root, release=release)
    if not pending(updates):
        host.noop(f"jail {jail_name} is at {updates['version']}: no updates needed")
        return
    _show_diff(updates)
    install = StringCommand(*_freebsd_update(root, release, "install")).get_raw_value()
    yield StringCommand(while_stopped(jail_name, config, root, device, f"{{ {links_out_refused(root)}; }} && {install}"))


@operation()
def packages_upgraded(jail: str | None = None, restart: tuple[str, ...] = ()):
    """
    Upgrade the installed packages (``pkg upgrade -y``) of the host, or of a running jail with ``pkg -j``, whose
    package scripts then run inside the jail.

    + jail: the running jail whose packages to upgrade
    + restart: services named after their package, restarted in the same command when their package is upgraded
      (the running daemon keeps the old binary until then)

    **Example:**

    .. code:: python

        update.packages_upgraded(jail="tor", restart=("tor",))
    """
    upgrades = readings.fact(PackageUpgrades, jail=jail)
    if not upgrades:
        host.noop(f"the packages {f'of jail {jail} ' if jail else ''}are up to date")
        return
    if host.state.config.DIFF:
        host.log(f"Will upgrade the packages{f' of jail {jail}' if jail else ''}:", logger.info)
        for name, (old, new) in sorted(upgrades.items()):
            logger.info(f"  {name} {old} -> {new}" if old else f"  {name} {new} (new)")
    command = ["env", "ASSUME_ALWAYS_YES=yes", *_pkg(jail), "upgrade", "-y"]
    for name in restart:
        if name in upgrades and upgrades[name][0] is not None:
            service = ["service"] + (["-j", QuoteString(jail)] if jail else []) + [QuoteString(name), "restart"]
            command += ["&&", *service]
    yield StringCommand(*command)
