"""Every file torjail places on a server, rendered from the settings object alone.

The deploy, the preview CLI (`python -m torjail render`) and the tests all take their files from here, so what an
operator previews is byte for byte what the deploy uploads.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import jinja2

# cron(8) reads system crontabs (with a user field) from /etc/cron.d; names starting with a dot are skipped.
BRUTEFORCE_CRON = "/etc/cron.d/torjail-bruteforce"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# local-unbound's configuration as rc.d/local_unbound looks for it (local_unbound_config).
UNBOUND_CONF = "/var/unbound/unbound.conf"

# Where an onion-service jail's tor keeps the service's keys and hostname (HiddenServiceDir), in its jail.
ONION_DIR = "/var/db/tor/onion"

# The interface shown in previews when ext_if is "detect" (the deploy resolves it on the server first).
PREVIEW_EXT_IF = "vtnet0"


@dataclass(frozen=True)
class GeneratedFile:
    """One generated file: where it goes on the server, which validator checks it, and its content."""

    path: str
    kind: str  # torrc, pf.conf, jail.conf, rc.conf, html, pkg.conf, unbound.conf, resolv.conf
    template: str
    content: str


@functools.cache
def _environment(template_dir):
    """One jinja2 environment per templates directory, so that each template is compiled once per process (and
    again only when its file changes): compiling them was most of a no-change deploy's planning, for every host."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    )


def _header(template, html=False):
    text = f"Managed by torjail (templates/{template}): changes made here are overwritten by the next deploy."
    return f"<!-- {text} -->" if html else f"# {text}"


def jail_path(settings, path):
    """Where a path inside the jail lives on the host."""
    return settings.jail_root.rstrip("/") + path


def exit_notice_path():
    return "/usr/local/etc/tor/tor-exit-notice.html"


def onion_files(service):
    """(server path, kind, template) of every file an onion-service jail gets, in deploy order."""
    return [
        (service.jail_conf_path, "jail.conf", "jail.conf.j2"),
        (jail_path(service, "/etc/rc.conf"), "rc.conf", "jail-rc.conf.j2"),
        (jail_path(service, "/usr/local/etc/pkg/repos/FreeBSD.conf"), "pkg.conf", "pkg-repo.conf.j2"),
        (jail_path(service, "/usr/local/etc/tor/torrc"), "torrc", "torrc-onion.j2"),
    ]


def jail_files(jail):
    """The files of one jail of the host, a relay's or an onion service's."""
    return onion_files(jail) if jail.kind == "onion-service" else relay_files(jail)


def relay_files(relay):
    """(server path, kind, template) of every file one relay's jail gets, in deploy order."""
    files = [
        (relay.jail_conf_path, "jail.conf", "jail.conf.j2"),
        (jail_path(relay, "/etc/rc.conf"), "rc.conf", "jail-rc.conf.j2"),
    ]
    if relay.exit_relay:
        files += [(jail_path(relay, UNBOUND_CONF), "unbound.conf", "local-unbound.conf.j2"),
                  (jail_path(relay, "/etc/resolv.conf"), "resolv.conf", "jail-resolv.conf.j2")]
    files += [
        (jail_path(relay, "/usr/local/etc/pkg/repos/FreeBSD.conf"), "pkg.conf", "pkg-repo.conf.j2"),
        (jail_path(relay, "/usr/local/etc/tor/torrc"), "torrc", "torrc.j2"),
    ]
    if relay.exit_notice:
        files.append((jail_path(relay, exit_notice_path()), "html", "tor-exit-notice.html.j2"))
    return files


HOST_FIRST = [("/usr/local/etc/pkg/repos/FreeBSD.conf", "pkg.conf", "pkg-repo.conf.j2")]
HOST_LAST = [("/etc/pf.conf", "pf.conf", "pf.conf.j2"), (BRUTEFORCE_CRON, "crontab", "bruteforce.cron.j2")]


def planned_files(settings):
    """(server path, kind, template) of every file this host gets, in deploy order: the host's package
    repository, each jail's files, then pf.conf (every jail's rules) and the <bruteforce> cron job."""
    return [*HOST_FIRST, *[file for jail in settings.jail_settings for file in jail_files(jail)], *HOST_LAST]


def relay_ports(relay):
    """The ports pf redirects to a relay's jail: its ORPort, and its DirPort when it has one."""
    return [relay.or_port] + ([relay.dir_port] if relay.dir_port else [])


def _pf_jails(settings):
    """Each jail of the host as pf.conf names it: its settings, whether it is a relay (and its ports), and the
    suffix of its macros and tables (none for the first, so a host of one relay keeps the names it always had; 2,
    3... for the others)."""
    relays = settings.relays
    return [{"s": jail, "relay": jail in relays, "ports": relay_ports(jail) if jail in relays else [],
             "n": "" if index == 0 else index + 1}
            for index, jail in enumerate(settings.jail_settings)]


def render_file(settings, template, family=None):
    """Render one template for one host; `family` the torrc's family lines (torjail.family.torrc_lines), None
    outside a family. Settings whose ext_if is still "detect" (a preview) are rendered with PREVIEW_EXT_IF."""
    ext_if = PREVIEW_EXT_IF if settings.ext_if == "detect" else settings.ext_if
    return _environment(str(TEMPLATE_DIR)).get_template(template).render(
        s=settings,
        header=_header(template, html=template.endswith(".html.j2")),
        ext_if=ext_if,
        jails=_pf_jails(settings) if template == "pf.conf.j2" else None,  # the host's file alone names every jail
        exit_notice_path=exit_notice_path(),
        onion_dir=ONION_DIR,
        family=family,
    )


def render_all(settings, family=None):
    """Every generated file of one host, in deploy order; `family` gives a relay's torrc family lines from its
    Settings (torjail.family.torrc_lines), None for none. Each jail's files are rendered from its own settings,
    the host's (pf.conf, which names every jail) from the host's."""
    def lines(relay):
        return None if family is None else family(relay)
    host_files = [(settings, None, file) for file in HOST_FIRST]
    jails = [(jail, lines(jail) if jail.kind == "relay" else None, file)
             for jail in settings.jail_settings for file in jail_files(jail)]
    last = [(settings, None, file) for file in HOST_LAST]
    return [GeneratedFile(path, kind, template, render_file(owner, template, family_lines))
            for owner, family_lines, (path, kind, template) in [*host_files, *jails, *last]]
