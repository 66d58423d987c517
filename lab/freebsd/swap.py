"""swapon(8), swapoff(8), swapctl(8) and swapinfo(8) of a lab host (one program under four names, as on FreeBSD).

Swap is kernel state only ("swap": {"devices": [{"device", "size"}]}): the machine's real swap is never
touched. A device named DEV.eli is set up the way swapon(8) does it, by running `geli onetime -d` with the
aalgo/ealgo/keylen/sectorsize/notrim options of its fstab line; swapoff then closes it, and GELI detaches it.
"""

import subprocess
import sys

from lab.freebsd import cli, geom, kernel

USAGES = {
    "swapon": "usage: swapon [-F fstab] -aLq | [-E] file ...",
    "swapoff": "usage: swapoff [-F fstab] -afLq | file ...",
    "swapctl": "usage: swapctl [-AghklmsU] [-a file ... | -d file ...]",
}
GELI_OPTIONS = {"aalgo": "-a", "ealgo": "-e", "keylen": "-l", "sectorsize": "-s"}


class SwapError(Exception):
    pass


def devices():
    return kernel.read("swap", {}).get("devices", [])


def read_fstab(path):
    entries = []
    try:
        with open(path) as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 4 and fields[2] == "swap":
                    entries.append({"spec": fields[0], "options": fields[3].split(",")})
    except OSError:
        pass
    return entries


def full_name(name):
    return name if name.startswith("/") else "/dev/" + name


def geli_onetime(prov, options):
    command = ["/sbin/geli", "onetime", "-d"]
    values = {"ealgo": "AES-XTS", "sectorsize": "4096"}
    for option in options:
        key, _sep, value = option.partition("=")
        if key in GELI_OPTIONS:
            values[key] = value
        elif key == "notrim":
            command.append("-T")
    for key, flag in GELI_OPTIONS.items():
        if key in values:
            command += [flag, values[key]]
    result = subprocess.run(command + [prov], capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SwapError(f"{prov}: geli onetime failed")


def swap_on(name, options, prog):
    device = full_name(name)
    short = geom.short_name(device)
    if any(entry["device"] == device for entry in devices()):
        raise SwapError(f"{device}: device already in use")
    file_option = [option[5:] for option in options if option.startswith("file=")]
    if file_option and short.removesuffix(".eli").startswith("md"):
        unit = short.removesuffix(".eli")[2:]
        if int(unit) not in geom.md_units():
            subprocess.run(["/sbin/mdconfig", "-a", "-t", "vnode", "-f", file_option[0], "-u", unit],
                           stdout=subprocess.DEVNULL, check=False)
    if short.endswith(".eli") and short[:-4] not in geom.eli_providers():
        consumer = short[:-4]
        try:
            geom.provider(consumer)
        except geom.NoProvider:
            raise SwapError(f"{device}: No such file or directory")
        geli_onetime(consumer, options)
    try:
        prov = geom.provider(short)
    except geom.NoProvider:
        raise SwapError(f"{device}: No such file or directory")
    with kernel.update("swap", {}) as state:
        state.setdefault("devices", []).append({"device": device, "size": prov["mediasize"]})


def swap_off(name):
    device = full_name(name)
    short = geom.short_name(device)
    if not any(entry["device"] == device for entry in devices()):
        raise SwapError(f"{device}: Invalid argument")
    with kernel.update("swap", {}) as state:
        state["devices"] = [entry for entry in state.get("devices", []) if entry["device"] != device]
    geom.last_write_close(short)


def main(prog, argv):
    try:
        return _main(prog, argv)
    except cli.UsageError as error:
        return error.status


def _main(prog, argv):
    opts, args = cli.parse(prog, argv[1:], "AadEfF:ghklLmqsU", USAGES[prog])
    flags = {opt for opt, _value in opts}
    fstab = dict(opts).get("-F", "/etc/fstab")
    action = {"swapon": "on", "swapoff": "off", "swapctl": None}[prog]
    doall = False
    if prog == "swapctl":
        if "-A" in flags:
            action, doall = "on", True
        elif "-U" in flags:
            action, doall = "off", True
        elif "-a" in flags:
            action = "on"
        elif "-d" in flags:
            action = "off"
        if action is None:
            if "-l" in flags or "-s" in flags:
                return listing("-l" in flags, "-s" in flags, flags)
            print(USAGES[prog], file=sys.stderr)
            return 1
    else:
        doall = "-a" in flags
        if not doall and not args:
            print(USAGES[prog], file=sys.stderr)
            return 1
    quiet = "-q" in flags
    status = 0
    targets = []
    if doall:
        for entry in read_fstab(fstab):
            if "noauto" in entry["options"] or ("late" in entry["options"] and "-L" not in flags):
                continue
            active = any(item["device"] == full_name(entry["spec"]) for item in devices())
            if (action == "on") == active:
                continue
            targets.append((entry["spec"], entry["options"]))
    fstab_options = {entry["spec"]: entry["options"] for entry in read_fstab(fstab)}
    targets += [(name, fstab_options.get(name, [])) for name in args]
    for name, options in targets:
        try:
            if action == "on":
                swap_on(name, options, prog)
            else:
                swap_off(name)
        except SwapError as error:
            cli.warnx(prog, str(error))
            status = 1
            continue
        if not quiet:
            print(f"{prog}: {'add' if action == 'on' else 'remov'}ing {full_name(name)} as swap device")
    return status


def listing(per_device, summary, flags):
    """swapctl -l / -s."""
    unit, header = 1024, "1024-blocks"
    if "-m" in flags:
        unit, header = 2**20, "1MB-blocks"
    elif "-g" in flags:
        unit, header = 2**30, "1GB-blocks"
    width = 9  # the header width getbsize(3) gives for BLOCKSIZE=1K
    if per_device:
        print("%-13s %*s %*s" % ("Device:", width, header, width, "Used:"))
    total = 0
    for entry in devices():
        total += entry["size"]
        if per_device:
            print("/dev/%-8s %*d %*d" % (geom.short_name(entry["device"]), width, entry["size"] // unit, width, 0))
    if summary:
        print("Total:        %*d %*d" % (width, total // unit, width, 0))
    return 0


def swapinfo(argv):
    """swapinfo(8) (pstat -s): one line per device and a Total line when there are several."""
    try:
        opts, args = cli.parse("swapinfo", argv[1:], "ghkmM:N:", "usage: swapinfo [-ghkm] [-M core [-N system]]")
    except cli.UsageError as error:
        return error.status
    flags = {opt for opt, _value in opts}
    unit, header = 1024, "1K-blocks"
    if "-m" in flags:
        unit, header = 2**20, "1M-blocks"
    elif "-g" in flags:
        unit, header = 2**30, "1G-blocks"
    width = len(header)
    print("%-15s %*s %8s %8s %8s" % ("Device", width, header, "Used", "Avail", "Capacity"))
    entries = devices()
    total = 0
    for entry in entries:
        size = entry["size"] // unit
        total += size
        print("%-15s %*d %8d %8d %5.0f%%" % (entry["device"], width, size, 0, size, 0))
    if len(entries) > 1:
        print("%-15s %*d %8d %8d %5.0f%%" % ("Total", width, total, 0, total, 0))
    return 0
