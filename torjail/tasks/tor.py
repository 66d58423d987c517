"""Tor in the jail: the package installed (torjail.freebsd.pkg), the torrc checked by `tor --verify-config`
inside the running jail before it replaces the live one, an offline-master relay's
signing key and certificate, the family key (and, for a rebuild, the key files of a backup) placed before tor
needs them, the jail started (its rc starts tor), and tor reloaded only when its torrc or keys changed, or when a
deploy that changed torrc stopped before the reload (a marker beside the torrc says so).
"""

from pyinfra.facts.files import File

from torjail.freebsd import jail, jailfs, mount, pkg, service
from torjail.procedures.files import content_differs
from torjail.freebsd.jail import Jails
from torjail.render import exit_notice_path, jail_path, render_file
from torjail.tasks import family, keys, restore
from torjail.freebsd import readings

TORRC = "/usr/local/etc/tor/torrc"
RELOAD_OWED = TORRC + ".torjail-reload"
TOR_USER = "_tor"
TOR_UID = "256"  # _tor in FreeBSD's ports (UIDs); the host has no such user, so files are owned by number
TOR_DIRECTORIES = ("/var/db/tor", "/var/log/tor")
TOR_DIRECTORY_MODE = "700"
# torrc belongs to the jail's root: tor, running as _tor, reads it but cannot rewrite it (SAVECONF)
TORRC_MODE = "644"
TORRC_OWNER = "0"  # root, and group wheel, by number (the host's passwd does not speak for the jail's)


def verify_command():
    """`tor --verify-config` on the staged torrc, run inside the running jail, as the user tor runs as: run as
    root, tor refuses a DataDirectory that belongs to _tor. The jail's tor never runs outside the jail: while the
    jail is not running (the first deploy), the torrc is the one preflight already checked with the operator's own
    tor (torjail.checks.torrc), rendered from the same settings."""
    return ["/usr/local/bin/tor", "--verify-config", "-f", "{path}", "--User", TOR_USER]


def apply(settings):
    running = settings.jail_name in readings.fact(Jails)
    jail_args = (settings.jail_name, settings.jail_root, running)
    pkg.installed_in_jail(*jail_args, package="tor", name="tor package in the jail")
    for path in TOR_DIRECTORIES:
        jailfs.directory(*jail_args, path, mode=TOR_DIRECTORY_MODE, user=TOR_UID, group=TOR_UID, name=f"Jail {path}")
    if settings.exit_notice:
        jailfs.put(*jail_args, exit_notice_path(), content=render_file(settings, "tor-exit-notice.html.j2"),
                   name="Exit notice page")
    restored = restore.placed(settings, running)  # before tor first starts: it comes up as the backup's relay
    new_keys = keys.placed(settings, running) or restored
    family_lines, new_family_key = family.apply(settings, running)
    owed = jail_path(settings, RELOAD_OWED) if running else None
    reload_owed = running and bool(readings.fact(File, path=owed))
    content = render_file(settings, "torrc.j2", family=family_lines)
    rewritten = content_differs(jail_path(settings, TORRC), content)  # a chmod or chown alone reloads nothing
    torrc = jailfs.put(
        *jail_args, TORRC,
        name="torrc (checked by tor --verify-config in the jail)",
        content=content,
        check=verify_command(),
        mode=TORRC_MODE,
        user=TORRC_OWNER,
        group=TORRC_OWNER,
        owed=RELOAD_OWED if running else None,
    )
    if running:
        service.service(name="tor running in the jail", service="tor", jail=settings.jail_name)
        if new_keys or new_family_key:
            why = "restored keys" if restored else "new signing key" if new_keys else "new family key"
            service.reloaded(name=f"Reload tor ({why})", service="tor", jail=settings.jail_name, owed=owed)
        elif rewritten or reload_owed:
            service.reloaded(name="Reload tor (torrc changed)", service="tor", jail=settings.jail_name, owed=owed,
                             **({} if reload_owed else {"_if": torrc.did_change}))
    else:
        mount.mount(name="Hand the jail root to the jail's own mount", path=settings.jail_root, mounted=False,
                    assume_mounted=True)
        jail.jail(name=f"Start jail {settings.jail_name}", jail_name=settings.jail_name,
                  config=settings.jail_conf_path, root=settings.jail_root)

