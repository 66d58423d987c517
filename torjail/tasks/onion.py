"""An onion-service jail's own tor and services: tor and the service's packages installed in the jail, the torrc
of the onion service (checked by `tor --verify-config` inside the running jail, as a relay's), the jail started
(its rc starts tor and the services its rc.conf enables), tor reloaded when its torrc changed. tor makes the
service's keys and hostname in HiddenServiceDir itself, on the jail's encrypted root, the first time it starts;
for a rebuild, the keys of the service's backup are placed there first (torjail.tasks.restore), so it comes back
with its address.
"""

from pyinfra.facts.files import File

from torjail.freebsd import jail, jailfs, mount, pkg, readings, service
from torjail.freebsd.jail import Jails
from torjail.procedures.files import content_differs
from torjail.render import jail_path, render_file
from torjail.tasks import restore, tor


def apply(onion):
    running = onion.jail_name in readings.fact(Jails)
    jail_args = (onion.jail_name, onion.jail_root, running)
    for package in ("tor", *onion.service_packages):
        pkg.installed_in_jail(*jail_args, package=package, name=f"{package} package in the jail")
    for path in tor.TOR_DIRECTORIES:
        jailfs.directory(*jail_args, path, mode=tor.TOR_DIRECTORY_MODE, user=tor.TOR_UID, group=tor.TOR_UID,
                         name=f"Jail {path}")
    restored = restore.placed(onion, running)  # before tor first starts: it comes up with the backup's address
    owed = jail_path(onion, tor.RELOAD_OWED) if running else None
    reload_owed = running and bool(readings.fact(File, path=owed))
    content = render_file(onion, "torrc-onion.j2")
    rewritten = content_differs(jail_path(onion, tor.TORRC), content)
    torrc = jailfs.put(
        *jail_args, tor.TORRC,
        name="torrc of the onion service (checked by tor --verify-config in the jail)",
        content=content,
        check=tor.verify_command(),
        mode=tor.TORRC_MODE,
        user=tor.TORRC_OWNER,
        group=tor.TORRC_OWNER,
        owed=tor.RELOAD_OWED if running else None,
    )
    if running:
        service.service(name="tor running in the jail", service="tor", jail=onion.jail_name)
        for name in onion.service_rc:
            service.service(name=f"{name} running in the jail", service=name, jail=onion.jail_name)
        if restored:
            service.reloaded(name="Reload tor (restored keys)", service="tor", jail=onion.jail_name, owed=owed)
        elif rewritten or reload_owed:
            service.reloaded(name="Reload tor (torrc changed)", service="tor", jail=onion.jail_name, owed=owed,
                             **({} if reload_owed else {"_if": torrc.did_change}))
    else:
        mount.mount(name="Hand the jail root to the jail's own mount", path=onion.jail_root, mounted=False,
                    assume_mounted=True)
        jail.jail(name=f"Start jail {onion.jail_name}", jail_name=onion.jail_name, config=onion.jail_conf_path,
                  root=onion.jail_root)
