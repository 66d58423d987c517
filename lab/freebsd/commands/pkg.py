"""pkg(8) and its bootstrapper: bootstrap, install, info, query, delete, update, upgrade, -j/-c/-r, -v/-vv.

Before bootstrap, /usr/sbin/pkg offers to install pkg itself, as FreeBSD's bootstrapper does; after it,
/usr/local/sbin/pkg exists and commands run. Packages come from the lab's catalogue (lab.freebsd.pkgrepo):
nothing is downloaded, but the configured repository branch is honoured in messages and `pkg -vv`.
"""

import datetime
import os
import sys

from lab.freebsd import cli, jails, pkgrepo

USAGE = """Usage: pkg [-v] [-d] [-l] [-N] [-j <jail name or id>|-c <chroot path>|-r <rootdir>] [-C <configuration file>] [-R <repo config dir>] [-o var=value] [-4|-6] <command> [<args>]

For more information on available commands and options see 'pkg help'."""
EX_USAGE = 64
HOST_PKG = "/usr/local/sbin/pkg"
YES = ("yes", "true", "1", "on")
JAILED = None   # the jail named by -j: pkg prefixes its progress lines with [JAIL]


class PkgError(Exception):
    pass


def _assume_yes():
    return os.environ.get("ASSUME_ALWAYS_YES", "").lower() in YES


def _ask(question):
    sys.stdout.write(question)
    sys.stdout.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stdout.write("\n")
    return answer.strip().lower() in ("y", "yes")


def _repository(root="/"):
    repos = pkgrepo.repositories(root)
    for name, repo in repos.items():
        if pkgrepo.enabled(repo):
            return name, repo
    return "FreeBSD", {"url": "pkg+https://pkg.FreeBSD.org/${ABI}/quarterly"}


def main(argv):
    args = argv[1:]
    if args == ["--version"]:
        print(pkgrepo.PKG_VERSION)
        return 0
    try:
        options, operands = cli.parse("pkg", args, "dlNvj:c:r:C:R:o:46", USAGE, EX_USAGE)
    except cli.UsageError as error:
        return error.status
    verbosity = sum(1 for letter, _ in options if letter == "-v")
    values = {letter[1]: value for letter, value in options}
    try:
        root = _target_root(values)
        if not os.path.exists(HOST_PKG):
            if operands[:1] == ["bootstrap"]:
                return _bootstrap(operands[1:], argv[0])
            if "N" in values:
                cli.warnx("pkg", "pkg is not installed")
                return 1
            if not _bootstrap_prompt(argv[0]):
                return 1
            if not operands:
                return 0
        if "N" in values and not operands:
            return 0
        if not operands:
            if verbosity == 1:
                print(pkgrepo.PKG_VERSION)
                return 0
            if verbosity >= 2:
                return _show_config(root)
            print(USAGE, file=sys.stderr)
            return 1
        command, rest = operands[0], operands[1:]
        handler = COMMANDS.get(command)
        if handler is None:
            cli.warnx("pkg", f"unknown command: {command}")
            return 1
        return handler(root, rest, argv[0])
    except PkgError as error:
        cli.warnx("pkg", str(error))
        return 1
    except cli.UsageError as error:
        return error.status


def _target_root(values):
    global JAILED
    if "j" in values:
        JAILED = values["j"]
        jail = jails.find(values["j"])
        if jail is None:
            raise PkgError(f'jail_getid: jail "{values["j"]}" not found')
        return jail["path"]
    return values.get("c") or values.get("r") or "/"


# ------------------------------------------------------------------------------------------ bootstrap

def _bootstrap_prompt(launcher):
    print("The package management tool is not yet installed on your system.")
    if not _assume_yes() and not _ask("Do you want to fetch and install it now? [y/N]: "):
        return False
    _bootstrap_install(launcher)
    return True


def _bootstrap(args, launcher):
    options, _ = cli.parse("pkg", args, "fy", "usage: pkg bootstrap [-f] [-y]", EX_USAGE)
    force = any(letter == "-f" for letter, _ in options)
    if os.path.exists(HOST_PKG) and not force:
        print(f"pkg already bootstrapped at {HOST_PKG}")
        return 0
    if not any(letter == "-y" for letter, _ in options) and not _assume_yes():
        print("The package management tool is not yet installed on your system.")
        if not _ask("Do you want to fetch and install it now? [y/N]: "):
            return 1
    _bootstrap_install(launcher)
    return 0


def _bootstrap_install(launcher):
    _, repo = _repository()
    print(f"Bootstrapping pkg from {pkgrepo.expand(repo['url'])}, please wait...")
    print("Verifying signature with trusted certificate pkg.freebsd.org.2013102301... done")
    print(f"Installing pkg-{pkgrepo.PKG_VERSION}...")
    print(f"Extracting pkg-{pkgrepo.PKG_VERSION}: 100%")
    files = pkgrepo.install_pkg("/", os.path.realpath(launcher))
    pkgrepo.record("/", "pkg", pkgrepo.PKG_VERSION, files)


def _cmd_bootstrap(root, args, launcher):
    return _bootstrap(args, launcher)


# ------------------------------------------------------------------------------------------ commands

def _updating(root):
    name, _ = _repository(root)
    print(f"Updating {name} repository catalogue...")
    print(f"{name} repository is up to date.")
    print("All repositories are up to date.")


def _cmd_update(root, args, launcher):
    _updating(root)
    return 0


def _cmd_install(root, args, launcher):
    options, names = cli.parse("pkg", args, "AfgiIMnFqRUxyr:", "Usage: pkg install [-AfInFMqRUy] [-r reponame] "
                               "[-Cgix] <pkg-name> ...", EX_USAGE)
    flags = {letter[1] for letter, _ in options}
    if not names:
        print("Usage: pkg install [-AfInFMqRUy] [-r reponame] [-Cgix] <pkg-name> ...", file=sys.stderr)
        return EX_USAGE
    if "U" not in flags:
        _updating(root)
    unknown = [n for n in names if n not in pkgrepo.CATALOGUE]
    if unknown:
        raise PkgError(f"No packages available to install matching '{unknown[0]}' have been found in the "
                       "repositories")
    db = pkgrepo.read_db(root)
    wanted = [n for n in dict.fromkeys(names) if n not in db or "f" in flags]
    if not wanted:
        print("Checking integrity... done (0 conflicting)")
        print("The most recent versions of packages are already installed")
        return 0
    repo_name, _ = _repository(root)
    versions = {n: pkgrepo.available_version(n) for n in wanted}
    print(f"The following {len(wanted)} package(s) will be affected (of 0 checked):\n")
    print("New packages to be INSTALLED:")
    for name in wanted:
        print(f"\t{name}: {versions[name]} [{repo_name}]")
    print(f"\nNumber of packages to be installed: {len(wanted)}\n")
    size = sum(pkgrepo.CATALOGUE[n]["flatsize"] for n in wanted)
    print(f"The process will require {_human(size)} more space.")
    print(f"{_human(size // 3)} to be downloaded.\n")
    if "n" in flags:
        return 0
    if "y" not in flags and not _assume_yes() and not _ask("Proceed with this action? [y/N]: "):
        return 1
    for index, name in enumerate(wanted, start=1):
        print(f"[{index}/{len(wanted)}] Fetching {name}-{versions[name]}.pkg: 100%")
    print("Checking integrity... done (0 conflicting)")
    messages = []
    for index, name in enumerate(wanted, start=1):
        label = f"{name}-{versions[name]}"
        print(f"[{index}/{len(wanted)}] Installing {label}...")
        files = _unpack(root, name, launcher)
        print(f"[{index}/{len(wanted)}] Extracting {label}: 100%")
        pkgrepo.record(root, name, versions[name], files, repo_name)
        if pkgrepo.CATALOGUE[name].get("message"):
            messages.append((label, pkgrepo.CATALOGUE[name]["message"]))
    if messages:
        print("=====")
        for label, message in messages:
            print(f"Message from {label}:\n\n--\n{message}")
    return 0


def _unpack(root, name, launcher):
    """Put package `name`'s files under root, printing what its install script prints; install and upgrade
    unpack the same way. Returns the files, for the package database."""
    if name != "tor":
        return pkgrepo.install_pkg(root, os.path.realpath(launcher))
    files, notes = pkgrepo.install_tor(root)
    for note in notes:
        print(note)
    return files


def _human(size):
    if size >= 1 << 20:
        return f"{round(size / (1 << 20))} MiB"
    return f"{round(size / 1024)} KiB"


def _cmd_info(root, args, launcher):
    options, names = cli.parse("pkg", args, "aAbBcCdDeEfgiIklOopqrRsx", "Usage: pkg info <pkg-name>", EX_USAGE)
    flags = {letter[1] for letter, _ in options}
    db = pkgrepo.read_db(root)
    if not names or "a" in flags:
        for name in sorted(db):
            if "q" in flags:
                print(f"{name}-{db[name]['version']}")
            else:
                print(f"{name + '-' + db[name]['version']:<31} {db[name]['comment']}")
        return 0
    missing = [n for n in names if n not in db]
    if "e" in flags or "E" in flags:
        if "E" in flags:
            for name in names:
                if name in db:
                    print(f"{name}-{db[name]['version']}")
        return 1 if missing else 0
    if missing:
        raise PkgError(f"No package(s) matching {missing[0]}")
    for name in names:
        _info_block(db[name])
    return 0


def _info_block(package):
    installed = datetime.datetime.fromtimestamp(package["installed"], datetime.timezone.utc)
    fields = [
        ("Name", package["name"]), ("Version", package["version"]),
        ("Installed on", installed.strftime("%a %b %d %H:%M:%S %Y UTC")), ("Origin", package["origin"]),
        ("Architecture", pkgrepo.ABI), ("Prefix", "/usr/local"), ("Categories", package["categories"]),
        ("Licenses", package["licenses"]), ("Maintainer", package["maintainer"]), ("WWW", package["www"]),
        ("Comment", package["comment"]),
    ]
    print(f"{package['name']}-{package['version']}")
    for key, value in fields:
        print(f"{key:<15}: {value}")
    print(f"{'Annotations':<15}:")
    print(f"\tFreeBSD_version: 1403000\n\trepo_type      : binary\n\trepository     : {package['repository']}")
    print(f"{'Flat size':<15}: {package['flatsize'] / (1 << 20):.2f}MiB")


QUERY_FIELDS = {
    "n": "name", "v": "version", "o": "origin", "c": "comment", "w": "www", "m": "maintainer",
    "p": None, "q": None, "t": "installed", "R": "repository", "a": None, "k": None, "M": None,
}


def _query_format(package, template):
    out, index = [], 0
    while index < len(template):
        char = template[index]
        if char == "\\" and index + 1 < len(template):
            out.append({"n": "\n", "t": "\t"}.get(template[index + 1], template[index + 1]))
            index += 2
            continue
        if char != "%" or index + 1 >= len(template):
            out.append(char)
            index += 1
            continue
        key = template[index + 1]
        index += 2
        if key == "s" and index < len(template) and template[index] in "hb":
            size = package["flatsize"]
            out.append(f"{size / (1 << 20):.2f}MiB" if template[index] == "h" else str(size))
            index += 1
        elif key == "p":
            out.append("/usr/local")
        elif key == "q":
            out.append(pkgrepo.ABI)
        elif key in ("a", "k"):
            out.append("0")
        elif key in QUERY_FIELDS and QUERY_FIELDS[key]:
            out.append(str(package[QUERY_FIELDS[key]]))
        elif key == "%":
            out.append("%")
        else:
            raise PkgError(f"Unknown format key: '%{key}'")
    return "".join(out)


def _cmd_query(root, args, launcher):
    options, operands = cli.parse("pkg", args, "aAe:gix", "Usage: pkg query <query-format> <pkg-name>", EX_USAGE)
    flags = {letter[1] for letter, _ in options}
    if not operands:
        print("Usage: pkg query <query-format> <pkg-name>", file=sys.stderr)
        return EX_USAGE
    template, names = operands[0], operands[1:]
    db = pkgrepo.read_db(root)
    selected = sorted(db) if "a" in flags else [n for n in names if n in db]
    for name in selected:
        print(_query_format(db[name], template))
    return 0 if selected or "a" in flags else 1


def _cmd_delete(root, args, launcher):
    options, names = cli.parse("pkg", args, "aDfginqRxy", "Usage: pkg delete [-DfnqRy] [-Cgix] <pkg-name> ...",
                               EX_USAGE)
    flags = {letter[1] for letter, _ in options}
    db = pkgrepo.read_db(root)
    found = [n for n in names if n in db]
    for name in names:
        if name not in db:
            print(f"No packages matched for pattern '{name}'\n")
    print("Checking integrity... done (0 conflicting)")
    if not found:
        print("No packages to be deleted")
        return 0 if not names else 1
    print(f"Deinstallation has been requested for the following {len(found)} packages "
          f"(of 0 packages in the universe):\n")
    print("Installed packages to be REMOVED:")
    for name in found:
        print(f"\t{name}: {db[name]['version']}")
    print(f"\nNumber of packages to be removed: {len(found)}\n")
    if "n" in flags:
        return 0
    if "y" not in flags and not _assume_yes() and not _ask("Proceed with deinstalling packages? [y/N]: "):
        return 1
    for index, name in enumerate(found, start=1):
        label = f"{name}-{db[name]['version']}"
        print(f"[{index}/{len(found)}] Deinstalling {label}...")
        print(f"[{index}/{len(found)}] Deleting files for {label}: 100%")
        pkgrepo.remove_files(root, db[name]["files"])
        del db[name]
    pkgrepo.write_db(root, db)
    return 0


UPGRADE_USAGE = ("Usage: pkg upgrade [-fInFqUy] [-r reponame] [-Cgix] <pkg-name> ...\n\n"
                 "For more information see 'pkg help upgrade'.")


def _enabled_repositories(root):
    return [name for name, repo in pkgrepo.repositories(root).items() if pkgrepo.enabled(repo)]


def _cmd_upgrade(root, args, launcher):
    """pkg upgrade as src/upgrade.c runs it: -n prints the plan and exits 1 when there is something to do."""
    options, names = cli.parse("pkg", args, "CfFgiInqr:Uxyv", UPGRADE_USAGE, 1)
    flags = {letter[1] for letter, _ in options}
    quiet, dry_run = "q" in flags, "n" in flags
    for letter, what in (("f", "-f (reinstall everything)"), ("v", "-v (upgrade vulnerable packages)")):
        if letter in flags:
            raise PkgError(f"the lab does not emulate upgrade {what}")
    if "U" not in flags:
        _updating(root)
    db = pkgrepo.read_db(root)
    for name in names:
        if name not in db or pkgrepo.available_version(name) is None:
            raise PkgError(f"No packages available to upgrade matching '{name}' have been found in the "
                           "repositories")
    candidates = list(dict.fromkeys(names)) if names else sorted(db)
    print(f"Checking for upgrades ({len(candidates)} candidates): 100%")
    print(f"Processing candidates ({len(candidates)} candidates): 100%")
    upgrades = []
    for name in candidates:
        new = pkgrepo.available_version(name)
        old = db[name]["version"]
        if new is not None and pkgrepo.version_cmp(new, old) > 0:
            upgrades.append((name, old, new))
    print("Checking integrity... done (0 conflicting)")
    if not upgrades:
        if not quiet:
            print("Your packages are up to date.")
        return 0
    repos = _enabled_repositories(root)
    repo_name, _ = _repository(root)
    suffix = f" [{repo_name}]" if len(repos) > 1 else ""
    if not quiet or dry_run:
        print(f"The following {len(upgrades)} package(s) will be affected (of 0 checked):\n")
        print("Installed packages to be UPGRADED:")
        for name, old, new in upgrades:
            print(f"\t{name}: {old} -> {new}{suffix}")
        print(f"\nNumber of packages to be upgraded: {len(upgrades)}\n")
        # Same binary, same flat size: nothing more to require, only the packages to download.
        size = sum(pkgrepo.CATALOGUE[name]["flatsize"] for name, _, _ in upgrades)
        print(f"{_human(size // 3)} to be downloaded.")
        if dry_run:
            return 1
        if "y" not in flags and not _assume_yes() and not _ask("\nProceed with this action? [y/N]: "):
            return 1
    elif "y" not in flags and not _assume_yes():
        return 1  # -q without -y: upgrade.c asks nothing, and a "no" is its answer
    prefix = f"[{JAILED}] " if JAILED else ""
    total = len(upgrades)
    for index, (name, old, new) in enumerate(upgrades, start=1):
        print(f"{prefix}[{index}/{total}] Fetching {name}-{new}.pkg: 100%")
    if "F" in flags:
        return 0
    print("Checking integrity... done (0 conflicting)")
    for index, (name, old, new) in enumerate(upgrades, start=1):
        print(f"{prefix}[{index}/{total}] Upgrading {name} from {old} to {new}...")
        files = _unpack(root, name, launcher)
        print(f"{prefix}[{index}/{total}] Extracting {name}-{new}: 100%")
        stale = set(db[name]["files"]) - set(files)
        pkgrepo.remove_files(root, sorted(stale))
        pkgrepo.record(root, name, new, files, repo_name)
    return 0


def _show_config(root):
    print(f"Version                 : {pkgrepo.PKG_VERSION}")
    print('PKG_DBDIR = "/var/db/pkg";')
    print('PKG_CACHEDIR = "/var/cache/pkg";')
    print('PORTSDIR = "/usr/ports";')
    print('INDEXDIR = "";')
    print('INDEXFILE = "INDEX-14";')
    print(f'ABI = "{pkgrepo.ABI}";')
    print('ALTABI = "freebsd:14:x86:64";')
    print('REPOS_DIR [\n    "/etc/pkg/",\n    "/usr/local/etc/pkg/repos/",\n]')
    print("\nRepositories:")
    for name, repo in pkgrepo.repositories(root).items():
        print(f"  {name}: {{ ")
        fields = [("url", f'"{pkgrepo.expand(repo["url"])}"'),
                  ("enabled", "yes" if pkgrepo.enabled(repo) else "no"), ("priority", repo.get("priority", "0"))]
        if "mirror_type" in repo:
            fields.append(("mirror_type", f'"{repo["mirror_type"].upper()}"'))
        if "signature_type" in repo:
            fields.append(("signature_type", f'"{repo["signature_type"].upper()}"'))
        if "fingerprints" in repo:
            fields.append(("fingerprints", f'"{repo["fingerprints"]}"'))
        for position, (key, value) in enumerate(fields):
            comma = "," if position < len(fields) - 1 else ""
            print(f"    {key:<16}: {value}{comma}")
        print("  }")
    return 0


COMMANDS = {
    "bootstrap": _cmd_bootstrap, "install": _cmd_install, "info": _cmd_info, "query": _cmd_query,
    "delete": _cmd_delete, "remove": _cmd_delete, "update": _cmd_update, "upgrade": _cmd_upgrade,
}
