"""Our pyinfra facts and operations for the FreeBSD tools torjail drives.

pyinfra ships only pkg, sysrc, service and freebsd-update for FreeBSD, and its sysrc `set` does not
correct a wrong value. These modules fill the gap, one small module per tool, in pyinfra's own style:
facts are classes named after what they return, operations read a fact, compare, and then yield
commands or report `host.noop(...)`.

    md      mdconfig(8): memory disks backed by image files
    geli    geli(8): encrypted providers, and GELI metadata inside an image file
    jail    jail(8) / jls(8): running jails
    rc      rc.conf(5) and loader.conf(5) variables (compare, then sysrc)
    kld     kldload(8): kernel modules now and at boot
    sysctl  sysctl(8) values now and in /etc/sysctl.conf
    swap    swapon(8) / swapctl(8): active swap devices
    fstab   fstab(5) entries
    pf      pfctl(8): whether the packet filter is enabled
    pfguard loading a pf ruleset under a rollback guard that a fresh SSH login cancels
    mount   mount(8): mounted filesystems, mounting the jail root
    net     ifconfig(8) / route(8): interfaces, the default route, the cloned jail interface
    pkg     pkg(8) on the host and in a jail root
    service service(8): running services, on the host and in jails
    system  freebsd-version(1), dumpon(8)
    release a release's base.txz: fetched, verified against a pinned sha256, unpacked once
    image   a new encrypted image made safe to interrupt; unlocking one
    files   files checked on the server before they replace the live one
"""
