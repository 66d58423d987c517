"""Before anything changes: the settings of this host are valid, what "detect" stands for is known, every file
the deploy will place passes its check here, the release's base.txz has a pinned sha256 (torrc too, by the operator's own tor when there is one: the server's
tor checks it again, but only after the changes before it), and the encrypted image is in a state the deploy may
work with (absent, half-made or unlocked), an offline-master relay holds no master secret key, and a backup
to restore (TORJAIL_RESTORE) can be used."""

from pyinfra import host, logger
from pyinfra.api.exceptions import PyinfraError

from torjail.checks import check_file
from torjail.checks.torrc import TorNotFound, check_torrc_settings
from torjail.connection import without_nagle
from torjail.freebsd.net import DefaultRouteInterface, Interfaces
from torjail import hostkey, identity
from torjail.render import render_all
from torjail.settings import settings_for
from torjail.tasks import keys, restore, vault
from torjail.freebsd import readings


def external_interface(settings):
    """The interface pf filters on: the setting, or the interface of the server's default route."""
    if settings.ext_if != "detect":
        return settings.ext_if
    found = readings.fact(DefaultRouteInterface)
    if not found:
        raise PyinfraError(f"{host.name}: setting 'ext_if' is 'detect' but the server has no IPv4 default route; "
                           "expected a default route, or set ext_if to the external interface's name")
    return found


def require_public_address(settings):
    """pf redirects the relay's ports arriving for public_ipv4 on ext_if and translates the jail's traffic to
    it: an address the interface does not hold (a typo, a provider's 1:1 NAT) would leave the relay unreachable
    and its traffic dropped, with every file valid. Stop before any change instead."""
    ext_if = settings.ext_if
    interfaces = readings.fact(Interfaces)
    if ext_if not in interfaces:
        raise PyinfraError(f"{host.name}: setting 'ext_if': the server has no interface {ext_if}; "
                           f"its interfaces are {', '.join(sorted(interfaces)) or 'none'}")
    held = interfaces[ext_if]["inet"]
    if settings.public_ipv4 not in held:
        raise PyinfraError(f"{host.name}: setting 'public_ipv4': {settings.public_ipv4} is not an address of "
                           f"{ext_if} (it holds {', '.join(held) or 'no IPv4 address'}); pf redirects the relay's "
                           "ports for that address and sends the relay's traffic from it, so it must be the "
                           "server's own address on its external interface")


def require_release_pin(settings):
    """base.txz is checked against a sha256 the operator pinned, never against the mirror's own MANIFEST: a forged
    mirror would forge both. Without the pin the deploy cannot tell a real userland from a forged one."""
    if settings.jail_release_sha256 is None:
        raise PyinfraError(
            f"{host.name}: setting 'jail_release_sha256' is required: the SHA256 of base.txz for "
            f"{settings.jail_release} ({settings.jail_arch}) as the release's MANIFEST lists it, taken from a "
            "source you checked yourself (the MANIFEST on an installation image verified against the signed "
            "release announcement), not from the mirror the deploy downloads from; nothing was changed")


def _torrc_problems(generated):
    """tor's complaints about torrc, each naming the settings it is about; none when this machine has no tor."""
    try:
        complaints = check_torrc_settings(generated.content)
    except TorNotFound:
        logger.info(f"{host.name}: note: no tor on this machine: torrc is checked by tor on the server only")
        return []
    return ["".join(f"setting '{name}': " for name in names) + f"{generated.path}: {problem}"
            for names, problem in complaints]


def check_generated_files(settings):
    """Stop before any change when a generated file fails its check (a template edited by hand, say)."""
    problems = []
    for generated in render_all(settings):
        if generated.kind == "torrc":
            problems += _torrc_problems(generated)
        else:
            problems += [f"{generated.path}: {problem}" for problem in check_file(generated)]
    if problems:
        raise PyinfraError(f"{host.name}: generated files are invalid, nothing was changed: " + "; ".join(problems))


def require_own_records(settings):
    """A host whose relay was flat, then listed under another jail name than tor, would find none of its keys
    and records in secrets_dir (they are in secrets_dir/HOST/, a listed relay not named tor keeps its own in
    HOST/jails/JAIL/): an offline-master relay would get a new identity. Stop before any change instead."""
    if settings.jails is None or any(relay.relay_name == settings.host_name for relay in settings.relays):
        return
    kept = identity.host_dir(settings)
    records = sorted(path.name for path in kept.glob("*") if path.is_file() and path.name != hostkey.RECORD)
    if records:
        raise PyinfraError(
            f"{host.name}: setting 'jails': secrets_dir holds the records of this host's relay from before its "
            f"jails were listed ({', '.join(records)} in {kept}), but no listed relay is named tor, the name that "
            "keeps them; name that relay's jail tor (jail_name), or move its records to "
            f"{kept}/jails/JAIL_NAME/ by hand; nothing was changed")


def apply():
    """Validated settings of the current host (its relays in `.relays`), ext_if resolved to the server's
    interface; raises before any operation is planned."""
    settings = settings_for(host)
    require_release_pin(settings)
    require_own_records(settings)
    without_nagle(host.connector)
    for each in settings.jail_settings:
        vault.state(each)  # a locked or unidentified image stops the deploy here
    for relay in settings.relays:
        keys.require_no_master_key(relay)
    for each in settings.jail_settings:
        restore.planned(each)  # a backup to restore that cannot be used stops the deploy here
    restore.require_owner(settings)
    settings = settings.with_ext_if(external_interface(settings))
    require_public_address(settings)
    check_generated_files(settings)
    return settings
