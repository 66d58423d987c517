"""The jail: its root populated from the release's base.txz (downloaded once, checked against the pinned sha256), its
jail.conf.d file, its address on a cloned loopback, and jail_enable without the jail in the boot list (its image
is locked after every boot). An exit resolves through its own local-unbound in the jail (the host's resolvers
would see, and answer for, every exit lookup); other relays copy the host's resolv.conf.
"""

from pathlib import Path

from pyinfra import host, logger
from pyinfra.api.exceptions import PyinfraError

from torjail.freebsd import jailfs, net, rc, service
from torjail.procedures import files as host_files, release
from torjail.freebsd.jail import Jails
from torjail.freebsd.md import MdDevices
from torjail.freebsd.system import FreeBSDVersion
from torjail.render import UNBOUND_CONF, render_file
from torjail.tasks.swap import SWAP_FILE
from torjail.freebsd import readings

CACHE_DIR = "/var/cache/torjail"
# Tor's log rotated by the jail's own newsyslog: the file is the same for every relay (files/, not a template).
NEWSYSLOG_PATH = "/usr/local/etc/newsyslog.conf.d/tor.conf"
NEWSYSLOG_SOURCE = Path(__file__).resolve().parents[2] / "files" / "tor-newsyslog.conf"
# The jail's cron runs that newsyslog, and nothing else of the release's crontab.
CRONTAB_PATH = "/etc/crontab"
CRONTAB_SOURCE = NEWSYSLOG_SOURCE.with_name("jail-crontab")
JAIL_CONF_MODE = "644"
JAIL_CONF_USER, JAIL_CONF_GROUP = "root", "wheel"


def check_release(settings):
    """A jail's userland must not be newer than the host's."""
    version = readings.fact(FreeBSDVersion)
    if version is None:
        raise PyinfraError(f"{host.name}: freebsd-version gave nothing: is this a FreeBSD server?")
    wanted = _release_numbers(settings.jail_release)
    if wanted > tuple(version[:2]):
        raise PyinfraError(f"{host.name}: setting 'jail_release': {settings.jail_release} is newer than the host's "
                           f"{version[2]}; expected {version[0]}.{version[1]}-RELEASE or older")


def _release_numbers(release):
    return tuple(int(part) for part in release.split("-")[0].split("."))


def check_upgrade(settings, populated):
    """A populated root moves only to a newer release of the same major version: base.txz cannot take a root
    back (an older userland over newer files), and a new major version needs every package rebuilt for its ABI."""
    old, new = _release_numbers(populated), _release_numbers(settings.jail_release)
    if new < old or new[0] != old[0]:
        raise PyinfraError(f"{host.name}: setting 'jail_release': the jail root holds {populated}, which "
                           f"{settings.jail_release} cannot replace in place (expected a newer {old[0]}.x release); "
                           "to change major version, rebuild the relay from a backup (see 'Backups and rebuild'); "
                           "nothing was changed")


def release_cache(settings) -> str:
    """Where the release's base.txz is kept on the host, checked against its pinned sha256."""
    return f"{CACHE_DIR}/{settings.jail_release}-{settings.jail_arch}"


def host_copies(settings) -> tuple[str, ...]:
    """The host's files the jail gets copies of (an exit's resolv.conf is its own, for its local-unbound)."""
    return ("/etc/localtime",) if settings.exit_relay else ("/etc/resolv.conf", "/etc/localtime")


def apply(settings):
    check_release(settings)
    cache = release_cache(settings)
    running = settings.jail_name in readings.fact(Jails)
    populated = readings.fact(release.RootPopulated, root=settings.jail_root)
    if populated != settings.jail_release:  # a root of this release needs no archive (nor its sha256 read again)
        release.fetched(name=f"base.txz of {settings.jail_release} (pinned sha256)", url=settings.base_url,
                        cache=cache, sha256=settings.jail_release_sha256)
    if populated is None or populated == settings.jail_release:
        release.unpacked(name="Jail root from base.txz", cache=cache, root=settings.jail_root,
                         release=settings.jail_release)
    else:
        check_upgrade(settings, populated)
        release.upgraded(name=f"Jail userland {populated} -> {settings.jail_release} (users, /var kept; "
                              f"{'the jail restarts' if running else 'the jail is stopped'})",
                         cache=cache, root=settings.jail_root, release=settings.jail_release,
                         jail_name=settings.jail_name, config=settings.jail_conf_path,
                         device=f"/dev/{settings.eli_device}", running=running)
    jail = (settings.jail_name, settings.jail_root, running)
    for path in host_copies(settings):
        jailfs.put(*jail, path, copy_of=path, name=f"Jail {path} from the host")
    jailfs.put(*jail, "/etc/rc.conf", content=render_file(settings, "jail-rc.conf.j2"), name="Jail rc.conf")
    if settings.exit_relay:
        _resolver(settings, jail)
    jailfs.put(*jail, "/usr/local/etc/pkg/repos/FreeBSD.conf", content=render_file(settings, "pkg-repo.conf.j2"),
               name="Jail package repository branch")
    jailfs.put(*jail, NEWSYSLOG_PATH, content=NEWSYSLOG_SOURCE.read_text(), name="Jail newsyslog rotates tor's log")
    jailfs.put(*jail, CRONTAB_PATH, content=CRONTAB_SOURCE.read_text(), name="Jail crontab: newsyslog every hour")
    if running:
        service.service(name="cron running in the jail (newsyslog)", service="cron", jail=settings.jail_name)
    jail_conf = render_file(settings, "jail.conf.j2")
    host_files.put(name=f"jail.conf.d/{settings.jail_name}.conf", content=jail_conf, dest=settings.jail_conf_path,
                   mode=JAIL_CONF_MODE, user=JAIL_CONF_USER, group=JAIL_CONF_GROUP)


def _resolver(settings, jail):
    """An exit's own caching resolver: local-unbound in the jail, configured before its resolv.conf points at it.
    A running jail starts it now (the jail's rc starts it at every later start, before tor), or has it reread a
    changed configuration, so the jail never points at a resolver that does not answer."""
    conf = jailfs.put(*jail, UNBOUND_CONF, content=render_file(settings, "local-unbound.conf.j2"),
                      name="Jail local-unbound configuration")
    if jail[2] and readings.fact(service.ServiceRunning, service="local_unbound", jail=settings.jail_name):
        service.reloaded(name="Reload local-unbound (configuration changed)", service="local_unbound",
                         jail=settings.jail_name, _if=conf.did_change)
    elif jail[2]:
        service.service(name="local-unbound running in the jail", service="local_unbound", jail=settings.jail_name)
    jailfs.put(*jail, "/etc/resolv.conf", content=render_file(settings, "jail-resolv.conf.j2"),
               name="Jail /etc/resolv.conf: the jail's own local-unbound")


def addresses(settings):
    """The cloned loopback with every jail's address (ifconfig_lo1_alias0, 1... in the order the host lists its
    jails), at boot and now (jail(8) needs them before `jail -c`), and jail_enable without the jails in the boot
    list (their images are locked after every boot). `settings` are the host's."""
    jails = settings.jail_settings
    interface = settings.jail_interface
    current = rc.current_values("/etc/rc.conf", None)
    cloned = current.get("cloned_interfaces", "").split()
    if interface not in cloned:
        cloned.append(interface)
    assignments = {"cloned_interfaces": " ".join(cloned),
                   **{f"ifconfig_{interface}_alias{index}": f"inet {each.jail_ip}/32"
                      for index, each in enumerate(jails)},
                   "jail_enable": "YES"}
    names = [each.jail_name for each in jails]
    boot_list = current.get("jail_list", "").split()
    if any(name in boot_list for name in names):
        assignments["jail_list"] = " ".join(name for name in boot_list if name not in names)
    ips = ", ".join(each.jail_ip for each in jails)
    rc.values(name=f"{interface} with {ips} and jail_enable at boot, {', '.join(names)} not in jail_list",
              assignments=assignments)
    net.cloned_addresses(name=f"{interface} with {ips}", interface=interface,
                         addresses=[each.jail_ip for each in jails])


def unlisted(settings):
    """Stop before any change when a jail of no listed entry runs, and say what else a jail taken off the host's
    list (or a shortened list) left on the server: an attached image, an address at boot. pf.conf keeps only the
    listed jails off the host's services and each other, so an unlisted running jail would reach them; the deploy
    never stops it nor removes anything of it (an image holds a jail's data, and only the operator may decide it
    is no longer needed: README 'Several jails', retiring a jail). `settings` are the host's. Read from the
    survey's readings: no command of its own."""
    listed = settings.jail_settings
    running = sorted(set(readings.fact(Jails)) - {each.jail_name for each in listed})
    if running:
        raise PyinfraError(
            f"{host.name}: setting 'jails': jail {', '.join(running)} runs on the server but is not listed; nothing "
            "was changed. The firewall keeps only listed jails off the host's services and the other jails: "
            f"list it again, or stop it first (jail -r {running[0]}; see README 'Several jails', retiring a jail)")
    images = {each.image_path for each in listed} | {SWAP_FILE}
    leftovers = [f"{unit} holds {device['file']}, the image of no listed jail"
                  for unit, device in sorted(readings.fact(MdDevices).items())
                  if device.get("file") and device["file"] not in images]
    prefix = f"ifconfig_{settings.jail_interface}_alias"
    current = rc.current_values("/etc/rc.conf", None)
    leftovers += [f"/etc/rc.conf gives {settings.jail_interface} {name}=\"{value}\" at boot, past the {len(listed)} "
                  "listed jails'"
                  for name, value in sorted(current.items())
                  if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) >= len(listed)]
    for leftover in leftovers:
        logger.warning(f"{host.name}: {leftover}; left as it is (the deploy never removes a jail or its image: see "
                       "README 'Several jails', retiring a jail)")
