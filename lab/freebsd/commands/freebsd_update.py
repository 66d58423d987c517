"""freebsd-update(8): fetch, install and updatesready (and showconfig) as freebsd-update.sh does them.

Options, configuration file, messages and exit statuses follow FreeBSD's script: command line over
/etc/freebsd-update.conf over defaults; a bad command line prints the usage text and exits 0 (the script's
usage() does); `fetch` refuses to run when standard input is not a terminal unless --not-running-from-cron;
the release comes from `uname -r` (UNAME_r, which --currently-running and -j set, replaces it, as FreeBSD's
uname honours it); working state lives in WorkDir under BDHASH = sha256 of "BASEDIR\\n", so -b roots and the
host never mix; the file lists go through $PAGER (default /usr/bin/less) one list at a time; `install` with
nothing fetched prints "No updates are available to install." and exits 2 (0 right after a `fetch` in the same
run); `updatesready` exits 0 or 2.

The metadata pipeline is the script's: tag, metadata index, INDEX-OLD/INDEX-NEW filtered by Components and
IgnorePaths, /boot/KERNCONF mapped to the running kernel's directory, the system inspected, UpdateIfUnmodified,
AllowAdd, AllowDelete and KeepModifiedMetadata applied, files fetched, an install manifest linked as
BDHASH-install; install backs up the kernel to BackupKernelDir, installs kernel then world, restarts the host's
sshd, and keeps the manifest as BDHASH-rollback. The lab's transport: files come over https from ServerName
(the lab's mirror, lab.updates) with fetch(1), and latest.ssl is the tag itself (FreeBSD's is RSA-signed).
Not emulated (a lab message, exit 1): cron, upgrade, rollback, IDS.
"""

import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

USAGE = """usage: {prog} [options] command ...

Options:
  -b basedir   -- Operate on a system mounted at basedir
                  (default: /)
  -d workdir   -- Store working files in workdir
                  (default: /var/db/freebsd-update/)
  -f conffile  -- Read configuration options from conffile
                  (default: /etc/freebsd-update.conf)
  -F           -- Force a fetch operation to proceed in the
                  case of an unfinished upgrade
  -j jail      -- Operate on the given jail specified by jid or name
  -k KEY       -- Trust an RSA key with SHA256 hash of KEY
  -r release   -- Target for upgrade (e.g., 13.2-RELEASE)
  -s server    -- Server from which to fetch updates
                  (default: update.FreeBSD.org)
  -t address   -- Mail output of cron command, if any, to address
                  (default: root)
  --not-running-from-cron
               -- Run without a tty, for use by automated tools
  --currently-running release
               -- Update as if currently running this release
Commands:
  fetch        -- Fetch updates from server
  cron         -- Sleep rand(3600) seconds, fetch updates, and send an
                  email if updates were found
  upgrade      -- Fetch upgrades to FreeBSD version specified via -r option
  updatesready -- Check if there are fetched updates ready to install
  install      -- Install downloaded updates or upgrades
  rollback     -- Uninstall most recently installed updates
  IDS          -- Compare the system against an index of "known good" files
  showconfig   -- Show configuration
"""
CONFIGOPTIONS = ("KEYPRINT WORKDIR SERVERNAME MAILTO ALLOWADD ALLOWDELETE KEEPMODIFIEDMETADATA COMPONENTS "
                 "IGNOREPATHS UPDATEIFUNMODIFIED BASEDIR VERBOSELEVEL TARGETRELEASE STRICTCOMPONENTS "
                 "MERGECHANGES IDSIGNOREPATHS BACKUPKERNEL BACKUPKERNELDIR BACKUPKERNELSYMBOLFILES").split()
SINGLE = {"KeyPrint": "KEYPRINT", "WorkDir": "WORKDIR", "ServerName": "SERVERNAME", "MailTo": "MAILTO",
          "BaseDir": "BASEDIR", "TargetRelease": "TARGETRELEASE"}
YESNO = {"AllowAdd": "ALLOWADD", "AllowDelete": "ALLOWDELETE", "KeepModifiedMetadata": "KEEPMODIFIEDMETADATA",
         "StrictComponents": "STRICTCOMPONENTS", "BackupKernel": "BACKUPKERNEL",
         "BackupKernelSymbolFiles": "BACKUPKERNELSYMBOLFILES", "CreateBootEnv": "BOOTENV"}
LISTS = {"Components": "COMPONENTS", "IgnorePaths": "IGNOREPATHS", "IDSIgnorePaths": "IDSIGNOREPATHS",
         "UpdateIfUnmodified": "UPDATEIFUNMODIFIED", "MergeChanges": "MERGECHANGES"}
NOT_EMULATED = ("cron", "upgrade", "rollback", "IDS")
COMMAND_NAMES = ("cron", "fetch", "upgrade", "updatesready", "install", "rollback", "IDS", "showconfig")
BASE_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"


class Exit(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class Fail(Exception):
    """A step returned 1 (the script's `|| return 1`)."""


def out(text="", end="\n"):
    sys.stdout.write(text + end)
    sys.stdout.flush()


class Update:
    def __init__(self, argv0):
        self.argv0 = argv0
        self.prog = os.path.basename(argv0)
        self.config = {name: "" for name in CONFIGOPTIONS + ["BOOTENV"]}
        self.conffile = ""
        self.commands = []
        self.forcefetch = False
        self.nottyok = False
        self.isfetched = False
        self.env = dict(os.environ, PATH=BASE_PATH + ":" + os.environ.get("PATH", ""), LC_ALL="C")
        self.env.pop("GREP_OPTIONS", None)
        self.pager = os.environ.get("PAGER") or "/usr/bin/less"

    # ---------------------------------------------------------------------------------- configuration

    def usage(self):
        out(USAGE.format(prog=self.prog), end="")
        raise Exit(0)

    def set_option(self, name, args):
        """config_NAME ARGS; False where the script's function returns 1."""
        c = self.config
        value = args[0] if args else ""
        if name in SINGLE:
            key = SINGLE[name]
            if c[key]:
                return False
            c[key] = value
            if name == "TargetRelease" and re.fullmatch(r"[0-9.]+", value):
                c[key] = value + "-RELEASE"
            return True
        if name in YESNO:
            key = YESNO[name]
            if c[key] or value.lower() not in ("yes", "no"):
                return False
            c[key] = value.lower()
            return True
        if name in LISTS:
            key = LISTS[name]
            for item in args:
                c[key] = f"{c[key]} {item}"
            return True
        if name == "VerboseLevel":
            if c["VERBOSELEVEL"] or value.lower() not in ("debug", "nostats", "stats"):
                return False
            c["VERBOSELEVEL"] = value.lower()
            return True
        if name == "BackupKernelDir":
            if c["BACKUPKERNELDIR"]:
                return False
            if not value:
                out("BackupKernelDir set to empty dir")
                return False
            if value in ("/", "/bin", "/boot", "/etc", "/lib", "/libexec", "/sbin", "/usr", "/var"):
                out(f"BackupKernelDir set to invalid path {value}")
                return False
            if not value.startswith("/"):
                out(f"BackupKernelDir ({value}) is not an absolute path")
                return False
            c["BACKUPKERNELDIR"] = value
            return True
        print(f"{self.argv0}: config_{name}: not found", file=sys.stderr)
        return False

    def source_release(self, release):
        if re.fullmatch(r"[0-9.]+", release):
            release += "-RELEASE"
        self.env["UNAME_r"] = release

    def target_jail(self, jail):
        # $(...) takes standard output only: the tools' errors reach the terminal, as the script's do.
        version = subprocess.run(["freebsd-version", "-j", jail], env=self.env, stdout=subprocess.PIPE,
                                 text=True).stdout.strip()
        listed = subprocess.run(["jls", "-j", jail, "-h", "path"], env=self.env, stdout=subprocess.PIPE,
                                text=True).stdout.splitlines()
        path = listed[1].strip() if len(listed) > 1 else ""
        self.config["BASEDIR"] = path
        if not path or not version:
            out("The specified jail either doesn't exist or does not have freebsd-version.")
            raise Exit(1)
        self.env["UNAME_r"] = version

    def parse_cmdline(self, args):
        index = 0
        while index < len(args):
            arg = args[index]
            last = index == len(args) - 1
            nxt = args[index + 1] if not last else ""
            if arg == "-f":
                if last or self.conffile:
                    self.usage()
                self.conffile = nxt
                index += 1
            elif arg == "-F":
                self.forcefetch = True
            elif arg == "--not-running-from-cron":
                self.nottyok = True
            elif arg == "--currently-running":
                if last:
                    self.usage()
                self.source_release(nxt)
                index += 1
            elif arg in ("-b", "-d", "-j", "-k", "-r", "-s", "-t", "-v"):
                if last:
                    self.usage()
                index += 1
                if arg == "-j":
                    self.target_jail(nxt)
                else:
                    name = {"-b": "BaseDir", "-d": "WorkDir", "-k": "KeyPrint", "-r": "TargetRelease",
                            "-s": "ServerName", "-t": "MailTo", "-v": "VerboseLevel"}[arg]
                    if not self.set_option(name, [nxt]):
                        self.usage()
            elif arg in ("--debug", "--no-stats"):
                if not self.set_option("VerboseLevel", ["debug" if arg == "--debug" else "nostats"]):
                    self.usage()
            elif arg in COMMAND_NAMES:
                self.commands.append(arg)
            else:
                self.usage()
            index += 1
        if not self.commands:
            self.usage()

    def _merge(self, saved):
        for key, value in saved.items():
            if value:
                self.config[key] = value

    def parse_conffile(self):
        if self.conffile and not os.access(self.conffile, os.R_OK):
            out(f"File does not exist or is not readable: {self.conffile}")
            raise Exit(1)
        if not self.conffile:
            self.conffile = "/etc/freebsd-update.conf"
            if not os.access(self.conffile, os.R_OK):
                return
        saved = dict(self.config)
        self.config = {key: "" for key in self.config}
        with open(self.conffile) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n").strip()
                words = line.split("#", 1)[0].split()
                if words and not self.set_option(words[0], words[1:]):
                    out(f"Error processing configuration file, line {number}:")
                    out(f"==> {line}")
                    raise Exit(1)
        self._merge(saved)

    def default_params(self):
        saved = dict(self.config)
        self.config = {key: "" for key in self.config}
        for name, value in (("WorkDir", "/var/db/freebsd-update"), ("MailTo", "root"), ("AllowAdd", "yes"),
                            ("AllowDelete", "yes"), ("KeepModifiedMetadata", "yes"), ("BaseDir", "/"),
                            ("VerboseLevel", "stats"), ("StrictComponents", "no"), ("BackupKernel", "yes"),
                            ("BackupKernelDir", "/boot/kernel.old"), ("BackupKernelSymbolFiles", "no"),
                            ("CreateBootEnv", "yes")):
            self.set_option(name, [value])
        self._merge(saved)

    def finalize_components(self):
        kept = []
        for component in self.config["COMPONENTS"].split():
            if component == "src" and not os.path.exists(self.based("/usr/src/COPYRIGHT")):
                out("src component not installed, skipped")
                continue
            kept.append(component)
        self.config["COMPONENTS"] = "".join(" " + c for c in kept)

    # ---------------------------------------------------------------------------------- helpers

    def run(self, argv, **kwargs):
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, **kwargs)

    def based(self, path):
        return self.config["BASEDIR"] + "/" + path.lstrip("/") if self.config["BASEDIR"] != "/" else path

    def uname(self, flag):
        return self.run(["uname", flag]).stdout.strip()

    def sysctl(self, name):
        return self.run(["sysctl", "-n", name]).stdout.strip()

    def bdhash(self):
        return hashlib.sha256((" ".join(self.config["BASEDIR"].split()) + "\n").encode()).hexdigest()

    def check_workdir(self):
        workdir = self.config["WORKDIR"]
        if not (os.path.isdir(workdir) and os.access(workdir, os.W_OK)):
            out(f"{self.prog}: Directory does not exist or is not writable: {workdir}")
            raise Exit(1)

    def kernel_dir(self):
        bootfile = self.sysctl("kern.bootfile")
        kerneldir = bootfile[:-len("/kernel")] if bootfile.endswith("/kernel") else bootfile
        if not os.path.isdir(kerneldir):
            out("Cannot identify running kernel")
            raise Exit(1)
        return kerneldir

    def fetch_url(self, path, dest):
        """fetch(1) of one file from the server; True when it arrived."""
        url = f"https://{self.config['SERVERNAME']}/{path}"
        env = dict(self.env, HTTP_USER_AGENT=self.user_agent)
        subprocess.run(["fetch", "-q", "-o", dest, url], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return os.path.isfile(dest)

    def progress(self, count):
        """fetch_progress: one line per requested file on phttpget's stderr."""
        text = ""
        for line in range(1, count + 1):
            if line % 10 == 0:
                text += str(line)
            elif line % 2 == 0:
                text += "."
        out(text + " ", end="")

    def page(self, header, paths):
        text = header + "".join(p + "\n" for p in paths)
        words = self.pager.split()
        sys.stdout.flush()
        try:
            subprocess.run(words, input=text.encode(), env=self.env)
        except (FileNotFoundError, PermissionError):
            print(f"{self.argv0}: {words[0]}: not found", file=sys.stderr)

    # ---------------------------------------------------------------------------------- fetch

    def fetchupgrade_check_params(self, command):
        c = self.config
        self.user_agent = f"freebsd-update ({command}, {self.uname('-r')})"
        if not c["SERVERNAME"]:
            out(f"{self.prog}: SERVERNAME must be given via command line or configuration file.")
            raise Exit(1)
        if not c["KEYPRINT"]:
            out(f"{self.prog}: Key must be given via -k option or configuration file.")
            raise Exit(1)
        if not re.fullmatch(r"[0-9a-f]{64}", c["KEYPRINT"]):
            out(f"{self.prog}: Invalid key fingerprint: {c['KEYPRINT']}")
            raise Exit(1)
        self.check_workdir()
        os.chmod(c["WORKDIR"], 0o700)
        os.chdir(c["WORKDIR"])
        self.relnum = re.sub(r"-SECURITY", "-RELEASE", re.sub(r"-p[0-9]+", "", self.uname("-r")))
        self.arch = self.uname("-m")
        self.fetchdir = f"{self.relnum}/{self.arch}"
        if not re.search(r"-RELEASE$|-ALPHA|-BETA|-RC", self.relnum):
            out(f"{self.prog}: Cannot upgrade from a version that is not a release\n"
                "(including alpha, beta and release candidates)\n"
                f"using {self.prog}. Instead, FreeBSD can be directly\n"
                "upgraded by source or upgraded to a RELEASE/RELENG version\n"
                f"prior to running {self.prog}.\n"
                f"Currently running: {self.relnum}")
            raise Exit(1)
        self.kerneldir = self.kernel_dir()
        self.kernconf = self.uname("-i")
        self.bd = self.bdhash()

    def cmd_fetch(self):
        self.finalize_components()
        if not sys.stdin.isatty() and not self.nottyok:
            out(f"{self.prog} fetch should not be run non-interactively.")
            out(f"Run {self.prog} cron instead.")
            raise Exit(1)
        self.fetchupgrade_check_params("fetch")
        if self.config["TARGETRELEASE"]:
            out(f"{self.prog}: '-r' option is meaningless with 'fetch' command.  (Did you mean 'upgrade' instead?)")
            raise Exit(1)
        if os.path.isfile(f"{self.bd}-install/kerneldone") and not self.forcefetch:
            out("You have a partially completed upgrade pending")
            out(f"Run '{self.prog} [options] install' first.")
            out(f"Run '{self.prog} [options] fetch -F' to proceed anyway.")
            raise Exit(1)
        try:
            self.fetch_run()
        except Fail:
            raise Exit(1)
        self.isfetched = True

    def no_mirrors(self):
        out("No mirrors remaining, giving up.\n\n"
            f"This may be because upgrading from this platform ({self.arch})\n"
            f"or release ({self.relnum}) is unsupported by {self.prog}. Only\n"
            f"platforms with Tier 1 support can be upgraded by {self.prog}.\n"
            "See https://www.freebsd.org/platforms/ for more info.\n\n"
            "If unsupported, FreeBSD must be upgraded by source.")
        raise Fail()

    def fetch_key(self):
        if os.access("pub.ssl", os.R_OK) and _sha256_file("pub.ssl") == self.config["KEYPRINT"]:
            return
        out(f"Fetching public key from {self.config['SERVERNAME']}... ", end="")
        _remove("pub.ssl")
        if not self.fetch_url(f"{self.fetchdir}/pub.ssl", "pub.ssl"):
            out("failed.")
            self.no_mirrors()
        if _sha256_file("pub.ssl") != self.config["KEYPRINT"]:
            out("key has incorrect hash.")
            _remove("pub.ssl")
            self.no_mirrors()
        out("done.")

    def fetch_tag(self):
        out(f"Fetching metadata signature for {self.relnum} from {self.config['SERVERNAME']}... ", end="")
        _remove("latest.ssl")
        if not self.fetch_url(f"{self.fetchdir}/latest.ssl", "latest.ssl"):
            out("failed.")
            self.no_mirrors()
        with open("latest.ssl", "rb") as handle:
            tag = handle.read()
        os.unlink("latest.ssl")
        with open("tag.new", "wb") as handle:
            handle.write(tag)
        pattern = rf"freebsd-update\|{re.escape(self.arch)}\|{re.escape(self.relnum)}\|[0-9]+\|[0-9a-f]{{64}}\|[0-9]{{10}}"
        text = tag.decode(errors="replace")
        if text.count("\n") != 1 or not re.match(pattern, text):
            out("invalid signature.")
            self.no_mirrors()
        out("done.")
        fields = text.strip().split("|")
        self.relpatchnum, self.tindexhash, self.eoltime = int(fields[3]), fields[4], int(fields[5])

    def fetch_tagsanity(self):
        relpx = self.uname("-r").rsplit("-", 1)[-1]
        relpx = int(relpx[1:]) if re.fullmatch(r"p[0-9]+", relpx) else 0
        if self.relpatchnum < relpx:
            out()
            out(f"Files on mirror ({self.relnum}-p{self.relpatchnum}) appear older than what")
            out(f"we are currently running ({self.uname('-r')})!")
            out("Cowardly refusing to proceed any further.")
            raise Fail()
        if os.path.isfile("tag"):
            last = open("tag").read().strip().split("|")
            if len(last) == 6 and last[2] == self.relnum and last[3].isdigit() and \
                    self.relpatchnum < int(last[3]):
                out()
                out(f"Files on mirror ({self.relnum}-p{self.relpatchnum}) are older than the")
                out(f"most recently seen updates ({self.relnum}-p{last[3]}).")
                out("Cowardly refusing to proceed any further.")
                raise Fail()

    def metadata_bogus(self, what, why):
        out()
        out(f"The update metadata{what} is correctly signed, but")
        out(f"failed an integrity check ({why}).")
        out("Cowardly refusing to proceed any further.")
        raise Fail()

    def fetch_metadata(self, names):
        out("Fetching metadata index... ", end="")
        _remove(self.tindexhash)
        if not self.fetch_url(f"{self.fetchdir}/t/{self.tindexhash}", self.tindexhash):
            out("failed.")
            raise Fail()
        if _sha256_file(self.tindexhash) != self.tindexhash:
            out("update metadata index corrupt.")
            raise Fail()
        out("done.")
        index_lines = open(self.tindexhash).read().splitlines()
        wanted = {}
        for name in names:
            matching = [line for line in index_lines if line.startswith(name + "|")]
            if len(matching) != 1:
                self.metadata_bogus(" index", f"{name} count not 1")
            wanted[name] = matching[0].split("|", 1)[1]
        present = _read_pairs("tINDEX.present")
        new = dict(present)
        new.update(wanted)
        if any(not re.fullmatch(r"[0-9A-Z.-]+", k) or not re.fullmatch(r"[0-9a-f]{64}", v) for k, v in new.items()):
            self.metadata_bogus(" index", "unexpected entry in tINDEX.new")
        patches = sorted({f"{present[k]}|{v}" for k, v in new.items() if k in present and present[k] != v
                          and not os.path.exists(f"files/{v}.gz") and os.path.exists(f"files/{present[k]}.gz")})
        if patches:
            out(f"Fetching {len(patches)} metadata patches.", end="")
            for patch in patches:
                self.fetch_url(f"{self.fetchdir}/tp/{patch.replace('|', '-')}.gz", patch.replace("|", "-") + ".gz")
            self.progress(len(patches))
            out("done.")
            out("Applying metadata patches... ", end="")
            for patch in patches:
                _remove(patch.replace("|", "-") + ".gz")  # the lab's server publishes no metadata patches
            out("done.")
        missing = sorted({v for v in new.values() if not os.path.exists(f"files/{v}.gz")})
        if missing:
            out(f"Fetching {len(missing)} metadata files... ", end="")
            for digest in missing:
                self.fetch_url(f"{self.fetchdir}/m/{digest}.gz", f"{digest}.gz")
            for digest in missing:
                if not os.path.isfile(f"{digest}.gz"):
                    out("failed.")
                    raise Fail()
                if hashlib.sha256(_gunzip(f"{digest}.gz")).hexdigest() != digest:
                    out("metadata is corrupt.")
                    raise Fail()
                os.replace(f"{digest}.gz", f"files/{digest}.gz")
            out("done.")
        for digest in new.values():
            self.metadata_sanity(digest)
        for digest in set(present.values()) - set(new.values()):
            _remove(f"files/{digest}.gz")
        os.unlink(self.tindexhash)
        _write_pairs("tINDEX.present", new)
        os.replace("tag.new", "tag")

    def metadata_sanity(self, digest):
        path_chars = r"[-+./:=,%@_\[~a-zA-Z0-9]"
        for line in _gunzip(f"files/{digest}.gz").decode(errors="replace").splitlines():
            if not re.match(rf"[a-z]+\|[0-9a-z-]+\|{path_chars}+\|[fdL-]\|", line):
                self.metadata_bogus("", "invalid initial fields")

    def filter_metadata(self, name):
        digest = _read_pairs("tINDEX.present")[name]
        lines = _gunzip(f"files/{digest}.gz").decode().splitlines()
        chosen = []
        for component in self.config["COMPONENTS"].split():
            prefix = component.replace("/", "|") + "|"
            chosen += [line for line in lines if line.startswith(prefix)]
        stripped = set()
        for line in chosen:
            rest = line.split("|", 2)[2]
            rest = re.sub(r"/\|d\|", "|d|", rest, count=1)
            rest = re.sub(r"/\|-\|", "|-|", rest, count=1)
            stripped.add(rest)
        ignored = {line for line in stripped for x in self.config["IGNOREPATHS"].split() if re.match(x, line)}
        return sorted(stripped - ignored)

    def filter_kernel_names(self, lines, kernconf):
        prefix = f"/boot/{kernconf}"
        mapped = [self.kerneldir + line[len(prefix):] for line in lines if line.startswith(prefix)]
        lines = sorted(lines + mapped)
        if not os.path.isdir(prefix):
            lines = [line for line in lines if not line.startswith(prefix)]
        return lines

    def inspect_system(self, *indexes):
        out("Inspecting system... ", end="")
        paths = sorted({line.split("|", 1)[0] for index in indexes for line in index})
        present = []
        for path in paths:
            full = self.config["BASEDIR"] + "/" + path
            if not os.path.lexists(full) or (not os.path.islink(full) and not os.path.exists(full)):
                present.append(f"{path}|-||||||")
                continue
            if not os.access(full, os.R_OK):
                print(f"Cannot read file: {full}", file=sys.stderr)
                raise Fail()
            info = os.lstat(full)
            meta = f"{info.st_uid}|{info.st_gid}|{stat.S_IMODE(info.st_mode) >> 9:o}{stat.S_IMODE(info.st_mode) & 0o777:03o}|0"
            if stat.S_ISLNK(info.st_mode):
                present.append(f"{path}|L|{meta}|{os.readlink(full)}|")
            elif stat.S_ISREG(info.st_mode):
                present.append(f"{path}|f|{meta}|{_sha256_file(full)}|")
            elif stat.S_ISDIR(info.st_mode):
                present.append(f"{path}|d|{meta}||")
            else:
                print(f"Unknown file type: {full}", file=sys.stderr)
                raise Fail()
        out("done.")
        return sorted(present)

    def fetch_run(self):
        os.makedirs("files", exist_ok=True)
        open("tINDEX.present", "a").close()
        self.fetch_key()
        self.fetch_tag()
        self.fetch_tagsanity()
        self.fetch_metadata(["INDEX-NEW", "INDEX-OLD"])
        new = self.filter_kernel_names(self.filter_metadata("INDEX-NEW"), self.kernconf)
        old = self.filter_kernel_names(self.filter_metadata("INDEX-OLD"), self.kernconf)
        present = self.inspect_system(old, new)
        old, present, new, modified = self.filter_unmodified_notpresent(old, present, new)
        notpresent = {line.split("|")[0] for line in present if line.split("|")[1] == "-"}
        if self.config["ALLOWADD"] != "yes":
            new = [line for line in new if line.split("|")[0] not in notpresent]
        present = [line for line in present if line.split("|")[0] not in notpresent]
        if self.config["ALLOWDELETE"] != "yes":
            nodes = {"|".join(line.split("|")[:2]) for line in new}
            present = [line for line in present if "|".join(line.split("|")[:2]) in nodes]
        new = self.filter_modified_metadata(old, present, new)
        same = set(present) & set(new)
        present = sorted(set(present) - same)
        new = sorted(set(new) - same)
        wanted, patches = self.files_prepare(old, present, new)
        self.fetch_files(wanted, patches)
        self.create_manifest(present, new, modified)
        self.warn_eol()

    def filter_unmodified_notpresent(self, old, present, new):
        def values(lines):
            return {(f[0], f[1], f[6]) for f in (line.split("|") for line in lines)
                    if any(re.match(x, f[0]) for x in self.config["UPDATEIFUNMODIFIED"].split())}
        known = values(old) | values(new)
        mlines = {v for v in values(present) if v not in known}
        mlines |= {(f[0], f[1], f[6]) for f in (line.split("|") for line in set(present) - set(old)) if f[1] == "-"}
        drop = {v[0] for v in mlines}

        def keep(lines):
            return sorted(line for line in lines if line.split("|")[0] not in drop)
        modified = sorted(v[0] for v in mlines if v[1] != "-")
        return keep(old), keep(present), keep(new), modified

    def filter_modified_metadata(self, old, present, new):
        if self.config["KEEPMODIFIEDMETADATA"] != "yes":
            return new
        old_meta = {"|".join(line.split("|")[:6]) for line in old}
        keepmeta = sorted({"|".join(line.split("|")[:6]) for line in present} - old_meta)
        result = set(new)
        for meta in keepmeta:
            node = "|".join(meta.split("|")[:2]) + "|"
            for line in [l for l in new if l.startswith(node)]:
                result.discard(line)
                result.add(meta + "|" + "|".join(line.split("|")[6:]))
        return sorted(result)

    def files_prepare(self, old, present, new):
        out("Preparing to download files... ", end="")

        def hashes(lines):
            return {(f[0], f[6]) for f in (line.split("|") for line in lines) if f[1] == "f"}
        wanted = sorted({h for _, h in hashes(new) if not os.path.exists(f"files/{h}.gz")})
        unmodified = hashes(old) & hashes(present)
        for path, digest in sorted(hashes(present)):
            if os.path.exists(f"files/{digest}.gz"):
                continue
            with open(self.config["BASEDIR"] + "/" + path, "rb") as handle:
                data = handle.read()
            if hashlib.sha256(data).hexdigest() != digest:
                out()
                out(f"File changed while FreeBSD Update running: {path}")
                raise Fail()
            with open(f"files/{digest}.gz", "wb") as handle:
                handle.write(gzip.compress(data))
        by_path = dict(unmodified)
        patches = sorted({f"{by_path[p]}|{h}" for p, h in hashes(new) if p in by_path and by_path[p] != h
                          and not os.path.exists(f"files/{h}.gz") and os.path.exists(f"files/{by_path[p]}.gz")})
        out("done.")
        return wanted, patches

    def fetch_files(self, wanted, patches):
        if patches:
            out(f"Fetching {len(patches)} patches.", end="")
            for patch in patches:
                self.fetch_url(f"{self.fetchdir}/bp/{patch.replace('|', '-')}", patch.replace("|", "-"))
            self.progress(len(patches))
            out("done.")
            out("Applying patches... ", end="")
            for patch in patches:
                _remove(patch.replace("|", "-"))  # the lab's server publishes whole files, no binary patches
            out("done.")
        filelist = [digest for digest in wanted if not os.path.exists(f"files/{digest}.gz")]
        if filelist:
            out(f"Fetching {len(filelist)} files... ", end="")
            for digest in filelist:
                self.fetch_url(f"{self.fetchdir}/f/{digest}.gz", f"{digest}.gz")
            self.progress(len(filelist))
            for digest in filelist:
                if not os.path.isfile(f"{digest}.gz"):
                    out("failed.")
                    raise Fail()
                if hashlib.sha256(_gunzip(f"{digest}.gz")).hexdigest() != digest:
                    out(f"{digest} has incorrect hash.")
                    raise Fail()
                os.replace(f"{digest}.gz", f"files/{digest}.gz")
            out("done.")

    def create_manifest(self, present, new, modified):
        link = f"{self.bd}-install"
        if os.path.islink(link):
            shutil.rmtree(os.path.realpath(link), ignore_errors=True)
            os.unlink(link)
        if modified:
            self.page("The following files are affected by updates. No changes have\n"
                      "been downloaded, however, because the files have been modified\nlocally:\n", modified)
        target = f"{self.relnum}-p{self.relpatchnum}"
        if not present and not new:
            out()
            out(f"No updates needed to update system to {target}.")
            return
        present_paths = {line.split("|")[0] for line in present}
        new_paths = {line.split("|")[0] for line in new}
        for verb, paths in (("removed", present_paths - new_paths), ("added", new_paths - present_paths),
                            ("updated", present_paths & new_paths)):
            if paths:
                self.page(f"The following files will be {verb} as part of updating to\n{target}:\n", sorted(paths))
        mdir = tempfile.mkdtemp(prefix="install.", dir=".")
        mdir = os.path.basename(mdir)
        _write_lines(f"{mdir}/INDEX-OLD", present)
        _write_lines(f"{mdir}/INDEX-NEW", new)
        os.symlink(mdir, link)

    def warn_eol(self):
        now = int(time.time())
        last = int(open("lasteolwarn").read().strip()) if os.path.isfile("lasteolwarn") else now - 63072000
        if self.eoltime < now:
            out()
            ended = self.run(["date", "-r", str(self.eoltime)]).stdout.strip()
            out(f"WARNING: {self.uname('-s')} {self.uname('-r')} HAS PASSED ITS END-OF-LIFE DATE.")
            out(f"Any security issues discovered after {ended}")
            out("will not have been corrected.")
            raise Fail()
        since, left = now - last, self.eoltime - now
        if left > 7884000 or left > since * 3:
            return
        unit, size = ("day", 86400) if left < 604800 else ("week", 604800) if left < 2678400 else ("month", 2678400)
        number = left // size
        if number != 1:
            unit += "s"
        out()
        out(f"WARNING: {self.uname('-s')} {self.uname('-r')} is approaching its End-of-Life date.")
        out("It is strongly recommended that you upgrade to a newer")
        out(f"release within the next {number} {unit}.")
        with open("lasteolwarn", "w") as handle:
            handle.write(f"{now}\n")

    # ---------------------------------------------------------------------------------- install

    def cmd_install(self):
        self.finalize_components()
        if os.geteuid() != 0:
            out("You must be root to run this.")
            raise Exit(1)
        level = self.sysctl("kern.securelevel")
        if level.lstrip("-").isdigit() and int(level) > 0:
            out("Updates cannot be installed when the system securelevel")
            out("is greater than zero.")
            raise Exit(1)
        self.check_workdir()
        os.chdir(self.config["WORKDIR"])
        self.bd = self.bdhash()
        link = f"{self.bd}-install"
        if not os.path.islink(link):
            out("No updates are available to install.")
            if not self.isfetched:
                out(f"Run '{self.prog} [options] fetch' first.")
                raise Exit(2)
            raise Exit(0)
        if not os.path.isfile(f"{link}/INDEX-OLD") or not os.path.isfile(f"{link}/INDEX-NEW"):
            out("Update manifest is corrupt -- this should never happen.")
            out(f"Re-run '{self.prog} [options] fetch'.")
            raise Exit(1)
        self.kerneldir = self.kernel_dir()
        # install_create_be: no bectl(8) on the lab host (UFS, no boot environments), so no snapshot is made.
        out("Installing updates...", end="")
        try:
            self.install_run(link)
        except Fail:
            raise Exit(1)
        out(" done.")

    def install_run(self, link):
        old, new = _read_lines(f"{link}/INDEX-OLD"), _read_lines(f"{link}/INDEX-NEW")
        for digest in sorted({f[6] for f in (l.split("|") for l in old + new) if f[1] == "f"}):
            if not os.path.exists(f"files/{digest}.gz"):
                out("Update files missing -- this should never happen.")
                out(f"Re-run '{self.prog} [options] fetch'.")
                raise Fail()
        if not os.path.isfile(f"{link}/kerneldone"):
            kernel_old = [l for l in old if l.startswith("/boot/")]
            kernel_new = [l for l in new if l.startswith("/boot/")]
            self.backup_kernel()
            self.install_from_index(kernel_new)
            self.install_delete(kernel_old, kernel_new)
            open(f"{link}/kerneldone", "w").close()
        if not os.path.isfile(f"{link}/worlddone"):
            world_new = [l for l in new if not l.startswith("/boot/")]
            world_old = [l for l in old if not l.startswith("/boot/")]
            lib = re.compile(r"^[^|]*/lib/[^|]*\.so\.[0-9]+\|")
            dirs = [l for l in world_new if l.split("|")[1] == "d"]
            rest_new = [l for l in world_new if l.split("|")[1] != "d"]
            self.install_from_index(dirs)
            for pattern in (r"^/libexec/ld-elf[^|]*\.so\.[0-9]+\|", r"^[^|]*/lib/libsys\.so\.[0-9]+\|",
                            r"^[^|]*/lib/libc\.so\.[0-9]+\|", r"^[^|]*/lib/libthr\.so\.[0-9]+\|"):
                self.install_from_index([l for l in rest_new if re.match(pattern, l)])
            self.install_from_index([l for l in rest_new if lib.match(l) and not re.match(
                r"^/libexec/ld-elf|^[^|]*/lib/(libsys|libc|libthr)\.so\.[0-9]+\|", l)])
            others_new = [l for l in rest_new if not lib.match(l) and not l.startswith("/libexec/ld-elf")]
            others_old = [l for l in world_old if l.split("|")[1] != "d" and not lib.match(l)
                          and not l.startswith("/libexec/ld-elf")]
            self.install_from_index(others_new)
            self.install_delete(others_old, others_new)
            if self.config["BASEDIR"] == "/" and self.run(["service", "sshd", "status"]).returncode == 0:
                out()
                out("Restarting sshd after upgrade")
                subprocess.run(["service", "sshd", "restart"], env=self.env)
                sys.stdout.flush()
            open(f"{link}/worlddone", "w").close()
            new_libs = {l.split("|")[0] for l in world_new if lib.match(l)}
            if {l.split("|")[0] for l in world_old if lib.match(l)} - new_libs:
                out()
                out("Completing this upgrade requires removing old shared object files.\n"
                    "Please upgrade or rebuild all installed 3rd party software (e.g.,\n"
                    "programs installed with pkg or from the ports tree) and then run\n"
                    f"'{self.prog} [options] install' again to finish installing updates.")
                raise Exit(0)
        world_new = [l for l in new if not l.startswith("/boot/")]
        world_old = [l for l in old if not l.startswith("/boot/")]
        libs = re.compile(r"^[^|]*/lib/[^|]*\.so\.[0-9]+\|")
        self.install_delete([l for l in world_old if libs.match(l) and l.split("|")[1] != "d"],
                            [l for l in world_new if libs.match(l) and l.split("|")[1] != "d"])
        self.install_delete([l for l in world_old if l.split("|")[1] == "d"],
                            [l for l in world_new if l.split("|")[1] == "d"])
        # install_setup_rollback
        for flag in ("kernelfirst", "kerneldone", "worlddone"):
            _remove(f"{link}/{flag}")
        rollback = f"{self.bd}-rollback"
        if os.path.islink(rollback):
            os.rename(rollback, f"{link}/rollback")
        os.rename(link, rollback)

    def backup_kernel(self):
        if self.config["BACKUPKERNEL"] != "yes":
            return
        backup = self.config["BACKUPKERNELDIR"]
        count = 0
        while True:
            full = self.config["BASEDIR"] + "/" + backup
            if not os.path.exists(full) or (os.path.isdir(full) and os.path.exists(full + "/.freebsd-update")):
                break
            count += 1
            if count > 9:
                out(f"Could not find valid backup dir ({self.config['BASEDIR']}/{backup})")
                raise Exit(1)
            backup = re.sub(r"[0-9]$", "", backup) + str(count)
        full = self.config["BASEDIR"] + "/" + backup
        if os.path.isdir(full):
            shutil.rmtree(full)
        os.makedirs(full, exist_ok=True)
        open(full + "/.freebsd-update", "w").close()
        source = self.config["BASEDIR"] + "/" + self.kerneldir
        if not os.path.isdir(source):
            return
        for top, _, names in os.walk(source):
            for name in names:
                if self.config["BACKUPKERNELSYMBOLFILES"] != "yes" and name.endswith((".debug", ".symbols")):
                    continue
                relative = os.path.relpath(os.path.join(top, name), source)
                os.makedirs(os.path.dirname(os.path.join(full, relative)), exist_ok=True)
                os.link(os.path.join(top, name), os.path.join(full, relative))

    def install_from_index(self, lines):
        for line in sorted(lines):
            fpath, ftype, owner, group, perm, _flags, value, hardlink = (line.split("|") + [""] * 8)[:8]
            target = self.config["BASEDIR"] + "/" + fpath
            if ftype == "d":
                if os.path.exists(target) and not os.path.isdir(target):
                    os.unlink(target)
                os.makedirs(target, exist_ok=True)
                os.chown(target, int(owner), int(group))
                os.chmod(target, int(perm, 8))
            elif ftype == "f":
                if os.path.isdir(target) and not os.path.islink(target):
                    out(f"Removing conflicting directory {target}")
                    shutil.rmtree(target)
                if hardlink:
                    _remove(target)
                    os.link(self.config["BASEDIR"] + "/" + hardlink, target)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                tmp = target + ".freebsd-update"
                with open(tmp, "wb") as handle:
                    handle.write(_gunzip(f"files/{value}.gz"))
                os.chown(tmp, int(owner), int(group))
                os.chmod(tmp, int(perm, 8))
                os.replace(tmp, target)  # install(1) replaces the file: a running program keeps the old one
            elif ftype == "L":
                if os.path.isdir(target) and not os.path.islink(target):
                    out(f"Removing conflicting directory {target}")
                    shutil.rmtree(target)
                _remove(target)
                os.symlink(value, target)

    def install_delete(self, old, new):
        keep = {line.split("|")[0] for line in new}
        for line in sorted(old, reverse=True):
            fpath, ftype = line.split("|")[:2]
            if fpath in keep:
                continue
            target = self.config["BASEDIR"] + "/" + fpath
            if ftype == "d":
                try:
                    os.rmdir(target)
                except OSError as error:
                    print(f"rmdir: {target}: {error.strerror}", file=sys.stderr)
            elif ftype == "f" and os.path.isfile(target) and not os.path.islink(target):
                os.unlink(target)
            elif ftype == "L" and os.path.islink(target):
                os.unlink(target)

    # ---------------------------------------------------------------------------------- others

    def cmd_updatesready(self):
        self.finalize_components()
        if not os.path.exists(self.config["WORKDIR"]):
            out("No updates are available to install.")
            raise Exit(2)
        try:
            os.chdir(self.config["WORKDIR"])
        except OSError as error:
            print(f"{self.argv0}: cd: can't cd to {self.config['WORKDIR']}: {error.strerror}", file=sys.stderr)
            raise Exit(1)
        if not os.path.islink(f"{self.bdhash()}-install"):
            out("No updates are available to install.")
            raise Exit(2)
        out("There are updates available to install.")
        out(f"Run '{self.prog} [options] install' to proceed.")

    def cmd_showconfig(self):
        self.finalize_components()
        for name in CONFIGOPTIONS:
            out(f"{name}={' '.join(self.config[name].split())}")

    def main(self, args):
        self.parse_cmdline(args)
        self.parse_conffile()
        self.default_params()
        for command in self.commands:
            if command in NOT_EMULATED:
                print(f"{self.prog}: the lab does not emulate '{command}' (fetch, install, updatesready and "
                      "showconfig are)", file=sys.stderr)
                raise Exit(1)
            getattr(self, f"cmd_{command}")()
        return 0


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _gunzip(path):
    with gzip.open(path, "rb") as handle:
        return handle.read()


def _read_pairs(path):
    pairs = {}
    if os.path.isfile(path):
        for line in open(path).read().splitlines():
            if "|" in line:
                key, value = line.split("|", 1)
                pairs[key] = value
    return pairs


def _write_pairs(path, pairs):
    _write_lines(path, [f"{k}|{v}" for k, v in sorted(pairs.items())])


def _read_lines(path):
    return [line for line in open(path).read().splitlines() if line]


def _write_lines(path, lines):
    with open(path, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))


def main(argv):
    update = Update(argv[0])
    try:
        return update.main(argv[1:])
    except Exit as done:
        sys.stdout.flush()
        return done.status
