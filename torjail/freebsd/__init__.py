"""Generic pyinfra facts and operations for the FreeBSD tools torjail drives.

pyinfra ships only pkg, sysrc, service and freebsd-update for FreeBSD, and its sysrc `set` does not
correct a wrong value. These modules fill the gap, one small module per tool, in pyinfra's own style:
facts are classes named after what they return, operations read a fact, compare, and then yield
commands or report `host.noop(...)`. Nothing here knows torjail's markers, records or layout: that is in
torjail.procedures, built on these.

    md      mdconfig(8): memory disks backed by image files
    geli    geli(8): encrypted providers, and GELI metadata inside an image file
    jail    jail(8) / jls(8): running jails
    rc      rc.conf(5) and loader.conf(5) variables (compare, then sysrc)
    kld     kldload(8): kernel modules now and at boot
    sysctl  sysctl(8) values now and in /etc/sysctl.conf
    swap    swapon(8) / swapctl(8): active swap devices
    fstab   fstab(5) entries
    pf      pfctl(8): whether the packet filter is enabled
    mount   mount(8): mounted filesystems, mounting the jail root
    net     ifconfig(8) / route(8): interfaces, the default route, the cloned jail interface
    pkg     pkg(8) on the host and in a jail root
    service service(8): running services, on the host and in jails
    system  freebsd-version(1), dumpon(8)
    jailfs  writing into a jail root so that the jail cannot redirect the write
    update  freebsd-update(8) and pkg-upgrade(8): patches for the host and its jails
    staging a file's new content staged beside the live one, its sha1 and its diff
    shell   an operation's consecutive shell commands sent as one remote command
"""
