"""Keep a relay host patched: the host's base system and packages, then the jail's packages (tor among them, with
`pkg -j`, so their scripts run inside the jail) and the jail's userland to the latest patch level of its release.

Only a running jail is updated: a locked image is unlocked first (unlock.py). tor restarts only when something
it runs on changed: a new tor package restarts tor; a patched userland restarts the whole jail (its libraries
are replaced), which starts the new tor too. A patched host kernel runs after the next reboot, which locks the
image: the run says so, and the operator reboots when it suits, then unlocks.
"""

from pyinfra import host, logger
from pyinfra.api.exceptions import PyinfraError

from torjail.freebsd import update
from torjail.freebsd.jail import Jails
from torjail.freebsd.update import BaseUpdates, PackageUpgrades
from torjail.freebsd import readings

KERNEL = "/boot/kernel/kernel"


def _fetched(where, updates):
    """What fetch staged, or a stop (before any change) with what freebsd-update said when it failed."""
    if updates["error"]:
        raise PyinfraError(f"{host.name}: freebsd-update fetch failed for {where}: {updates['error']}; a release "
                           "past its end of life gets no patches: move to a supported release first; nothing "
                           "was changed")
    return updates


def _files(updates):
    files = update.pending(updates)
    return f"{len(files)} file{'s' * (len(files) != 1)}: {', '.join(files[:6])}{', ...' if len(files) > 6 else ''}"


def _versions(upgrades):
    return ", ".join(f"{name} {old} -> {new}" if old else f"{name} {new} (new)" for name, (old, new) in
                     sorted(upgrades.items()))


def host_patched():
    """The host's base system and packages."""
    updates = _fetched("the host", readings.fact(BaseUpdates))
    name = "Host base system"
    if update.pending(updates):
        name += f" to {updates['version']} ({_files(updates)})"
        if KERNEL in updates["updated"]:
            logger.warning(f"{host.name}: the update replaces the kernel: it runs after a reboot, and a reboot "
                           "locks the relay's image: reboot when it suits, then run unlock.py")
    update.base_patched(name=name)
    upgrades = readings.fact(PackageUpgrades)
    update.packages_upgraded(name="Host packages" + (f" ({_versions(upgrades)})" if upgrades else ""))


def jail_patched(settings):
    """The jail's packages, then its userland; tor restarted with its package unless the jail restarts anyway."""
    if settings.jail_name not in readings.fact(Jails):
        raise PyinfraError(f"{host.name}: jail {settings.jail_name} is not running (its image is locked after a "
                           "reboot): run unlock.py first; nothing was changed")
    upgrades = readings.fact(PackageUpgrades, jail=settings.jail_name)
    updates = _fetched(f"jail {settings.jail_name}",
                       readings.fact(BaseUpdates, basedir=settings.jail_root, release=settings.jail_release))
    userland = update.pending(updates)
    name = f"Jail {settings.jail_name} packages"
    if upgrades:
        name += f" ({_versions(upgrades)}{'' if userland or 'tor' not in upgrades else '; tor restarts'})"
    update.packages_upgraded(name=name, jail=settings.jail_name, restart=() if userland else ("tor",))
    name = f"Jail {settings.jail_name} userland"
    if userland:
        name += f" to {updates['version']} ({_files(updates)}; the jail restarts)"
    update.jail_userland_patched(name=name, jail_name=settings.jail_name, config=settings.jail_conf_path,
                                 root=settings.jail_root, device=f"/dev/{settings.eli_device}",
                                 release=settings.jail_release)
