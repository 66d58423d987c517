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
"""
