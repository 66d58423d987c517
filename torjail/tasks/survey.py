"""What a deploy reads from a converged server, read with one remote command before the steps ask it.

A re-run that changes nothing would otherwise wait for a round trip per fact (about fifty of them), and operators
deploy over links of 50 to 150 ms. The steps still ask every fact they need (torjail.freebsd.readings answers from
the survey until an operation changes the server); a question listed here that a step no longer asks costs only
its share of the one command, and one a step asks that is not listed here is read alone, as before. The plan
test tests/plan/test_survey_plan.py keeps this list within what the steps ask of a converged relay or a fresh
server.
"""

import posixpath

from pyinfra.facts.files import Directory, File, FileContents, FindInFile, Sha1File, Sha256File

from torjail.freebsd import readings, sysctl
from torjail.freebsd.fstab import FstabEntries
from torjail.freebsd.geli import GeliProviders
from torjail.freebsd.jail import Jails
from torjail.freebsd.jailfs import FileAttributes
from torjail.freebsd.kld import KernelModules
from torjail.freebsd.md import MdDevices
from torjail.freebsd.mount import MountPoints
from torjail.freebsd.net import DefaultRouteInterface, Interfaces
from torjail.freebsd.pf import PfRulesetLoaded, PfStatus
from torjail.freebsd.pkg import JailPackages, PkgBootstrapped
from torjail.freebsd.rc import RcConf
from torjail.freebsd.service import ServiceRunning
from torjail.freebsd.swap import SwapDevices
from torjail.freebsd.system import DumpDevice, FreeBSDVersion
from torjail.procedures.deploylock import DeployLock
from torjail.procedures.image import ImageFiles
from torjail.procedures.pfguard import PfGuard
from torjail.procedures.release import RootPopulated
from torjail.render import BRUTEFORCE_CRON, UNBOUND_CONF
from torjail import family as family_keys
from torjail.tasks import base, family, firewall, jail, tor
from torjail.tasks.keys import keys_directory


def _jail_files(settings) -> list[str]:
    """The files the jail step places in the jail root, host copies first (torjail.tasks.jail)."""
    placed = ["/etc/rc.conf", "/usr/local/etc/pkg/repos/FreeBSD.conf", jail.NEWSYSLOG_PATH, jail.CRONTAB_PATH,
              tor.TORRC]
    if settings.exit_relay:
        placed += [UNBOUND_CONF, "/etc/resolv.conf"]
    return [*jail.host_copies(settings), *placed]


def _placed_on_the_host(dest: str) -> list[tuple[type, dict]]:
    """What placing a host file asks (torjail.procedures.files.put): the file, and on a server without it yet the
    destination and its directory."""
    return [*[(cls, {"path": dest}) for cls in (File, Sha1File)],
            *[(Directory, {"path": path}) for path in (dest, posixpath.dirname(dest))]]


def questions(settings) -> list[tuple[type, dict]]:
    """The (fact, arguments) pairs the deploy's steps ask of a converged host (`settings`: the host's), in the
    order they ask them, and those only a fresh server is asked where one command can answer them before the
    first change: each jail's (a relay's or an onion service's), what the host's steps ask once."""
    asked, seen = [], set()
    for each in settings.jail_settings:
        for question in _jail_questions(each):
            key = (question[0], repr(sorted(question[1].items())))
            if key not in seen:
                seen.add(key)
                asked.append(question)
    return asked


def _jail_questions(settings) -> list[tuple[type, dict]]:
    """What the steps ask of a host of this one jail: a relay, or an onion service (torjail.tasks.onion), which
    also runs its own services."""
    root = settings.jail_root
    asked: list[tuple[type, dict]] = [
        (DeployLock, {}),  # first: the lock is taken before anything else is read (torjail.tasks.lock)
        *_placed_on_the_host(base.PKG_REPO_CONF),
        (ImageFiles, {"path": settings.image_path}),
        (MdDevices, {}),
        (GeliProviders, {}),
        (MountPoints, {}),
        (DefaultRouteInterface, {}),
        (Interfaces, {}),
        (PkgBootstrapped, {}),
        (sysctl.Sysctls, {"names": sorted({**base.FIXED_SYSCTLS, **base.RAISED_SYSCTLS})}),
        *[(FindInFile, {"path": sysctl.SYSCTL_CONF, "pattern": sysctl.line_pattern(name)})
          for name in [*base.RAISED_SYSCTLS, *base.FIXED_SYSCTLS]],
        (KernelModules, {}),
        (RcConf, {"jail": None, "path": "/boot/loader.conf"}),
        (RcConf, {"jail": None, "path": "/etc/rc.conf"}),
        (DumpDevice, {}),
        (ServiceRunning, {"jail": None, "service": "ntpd"}),
        (FstabEntries, {}),
        (SwapDevices, {}),
        (FreeBSDVersion, {}),
        (Jails, {}),
        (Directory, {"path": root}),
        (RootPopulated, {"root": root}),
    ]
    for path in jail.host_copies(settings):
        asked.append((Sha1File, {"path": path}))
    for path in _jail_files(settings):
        asked += [(Sha1File, {"path": root + path}), (FileAttributes, {"path": root + path})]
    asked += [
        *_placed_on_the_host(settings.jail_conf_path),
        (ServiceRunning, {"jail": settings.jail_name, "service": "cron"}),
        *[(JailPackages, {"jail_name": settings.jail_name, "root": root, "running": running})
          for running in (True, False)],
        *[(Directory, {"path": root + path}) for path in tor.TOR_DIRECTORIES],
        (File, {"path": root + tor.RELOAD_OWED}),
        (ServiceRunning, {"jail": settings.jail_name, "service": "tor"}),
        (PfStatus, {}),
        (PfRulesetLoaded, {"path": firewall.PF_CONF}),
        (PfGuard, {}),
        (Sha1File, {"path": firewall.PF_CONF}),
        (File, {"path": firewall.PF_CONF}),
        (ServiceRunning, {"jail": None, "service": "pflog"}),
        *_placed_on_the_host(BRUTEFORCE_CRON),
        (ServiceRunning, {"jail": None, "service": "cron"}),
    ]
    if settings.exit_relay:
        asked.append((ServiceRunning, {"jail": settings.jail_name, "service": "local_unbound"}))
    if settings.kind == "relay" and settings.family is not None:  # torjail.tasks.family
        asked += [(FileContents, {"path": root + family.FINGERPRINT_FILE}),
                  (Sha256File, {"path": f"{keys_directory(settings)}/{family_keys.key_name(settings.family)}"})]
    if settings.kind == "onion-service":
        asked += [(ServiceRunning, {"jail": settings.jail_name, "service": name}) for name in settings.service_rc]
    return asked


def apply(settings) -> None:
    """Take the deploy lock and read what the deploy will ask, with one remote command: the lock is its first
    question, so nothing else changes the server while the rest is read (unless another run holds the lock, and
    then torjail.tasks.lock stops the deploy before any step uses the readings)."""
    readings.survey(questions(settings))
