"""Swap in deploy plans: the vault's keys and tor never come up while plain swap is active, and a swap file takes
the one encrypted form FreeBSD supports (an rc.d script, never an md99.eli fstab line)."""

from __future__ import annotations

import hashlib
import logging

import pytest
from pyinfra.api.exceptions import PyinfraError

from harness import plan
from test_deploy_plan import DEPLOY, SWAP_FSTAB, _merge_facts, passphrase, plan_server, server, stable  # noqa: F401

from torjail.tasks import swap

MEMORY = "names=['hw.pagesize', 'vm.stats.vm.v_free_count', 'vm.stats.vm.v_inactive_count']"
LOW_MEMORY = {MEMORY: {"hw.pagesize": "4096", "vm.stats.vm.v_free_count": "1000",
                       "vm.stats.vm.v_inactive_count": "1000"}}
STOP = "echo 'torjail: plain swap on /dev/ada0p3 is still active: reboot, then deploy again' >&2; exit 1"
STOP_OP = "Stop: plain swap is still active"
SCRIPT_SUM = hashlib.sha1(swap.SCRIPT_SOURCE.read_bytes()).hexdigest()
FSTAB_PATTERN = "extended_regex=False, interpolate_variables=False, path=/etc/fstab, pattern="


def first_vault_command(commands):
    """Where the vault's operations begin: the first command touching the image's directory."""
    return next(index for index, command in enumerate(commands) if "/var/jails" in command)


def after_swap(result):
    """The operations planned after the swap task's last one (the stop, when there is one)."""
    names = [op.name for op in result.operations]
    return result.operations[names.index(STOP_OP) + 1:] if STOP_OP in names else None


def test_low_memory_fresh_server_writes_fstab_then_stops_before_the_vault(caplog):
    """Plain swap that cannot move now stays active until the reboot: fstab is written, then an operation fails
    with what to do, and no vault, jail, tor or firewall operation is even planned."""
    caplog.set_level(logging.WARNING)
    result = plan_server("deploy_fresh", **{"sysctl.Sysctls": LOW_MEMORY})
    commands = stable(result.commands)
    assert commands[commands.index(SWAP_FSTAB):] == [SWAP_FSTAB, STOP]
    assert result.operations[-1].name == STOP_OP
    assert not any(word in command for command in commands for word in ("geli init", "mdconfig", "jail -", "pfctl"))
    assert "server: plain swap on /dev/ada0p3 is still active: reboot, then deploy again" in caplog.text
    assert "/dev/ada0p3.eli takes over at the next boot" in caplog.text


def test_enough_memory_moves_swap_live_before_the_vault():
    result = plan_server("deploy_fresh")
    commands = stable(result.commands)
    assert STOP_OP not in [op.name for op in result.operations]
    assert commands.index("swapoff /dev/ada0p3") < commands.index("swapon /dev/ada0p3.eli") \
        < first_vault_command(commands)


def test_after_the_reboot_the_next_deploy_goes_on():
    """The low-memory deploy's fstab, booted: encrypted swap only, and the deploy carries on into the vault."""
    result = plan_server("deploy_fresh", **{
        "sysctl.Sysctls": LOW_MEMORY,
        "fstab.FstabEntries": {"path=/etc/fstab": [
            {"device": "/dev/ada0p2", "mountpoint": "/", "fstype": "ufs", "options": "rw", "dump": 1, "pass": 1},
            {"device": "/dev/ada0p3.eli", "mountpoint": "none", "fstype": "swap",
             "options": swap.eli_options(_settings()), "dump": 0, "pass": 0}]},
        "swap.SwapDevices": [{"device": "/dev/ada0p3.eli", "blocks": 2097152, "used": 10240}],
        "files.FindInFile": {FSTAB_PATTERN + "^/dev/ada0p3\\.eli[[:space:]].*$": [
            "/dev/ada0p3.eli\tnone\tswap\tsw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0"]},
    })
    assert STOP_OP not in [op.name for op in result.operations]
    assert first_vault_command(result.commands) is not None
    assert not [command for command in result.commands if "ada0p3" in command]


def test_converged_server_with_plain_swap_active_stops_until_a_reboot():
    """fstab already says .eli (a low-memory deploy ran, no reboot yet), yet plain swap is what runs: the same
    stop, before the vault, the jail and tor are looked at."""
    result = plan_server("deploy_converged", **{
        "sysctl.Sysctls": LOW_MEMORY,
        "swap.SwapDevices": [{"device": "/dev/ada0p3", "blocks": 2097152, "used": 10240}],
    })
    assert [(op.name, stable(op.commands)) for op in result.changed] == [(STOP_OP, [STOP])]
    assert after_swap(result) == []


def test_converged_server_with_plain_swap_and_memory_to_spare_moves_it_live():
    result = plan_server("deploy_converged", **{
        "swap.SwapDevices": [{"device": "/dev/ada0p3", "blocks": 2097152, "used": 10240}],
        "geli.GeliProviders": {"md10.eli": {"state": "ACTIVE", "cipher": "AES-XTS", "key_length": 256,
                                            "sector_size": 4096, "flags": [], "consumer": "md10",
                                            "onetime": False}},
    })
    assert [command for op in result.changed for command in op.commands] == [
        "swapoff /dev/ada0p3", "geli onetime -d -e AES-XTS -l 256 -s 4096 /dev/ada0p3", "swapon /dev/ada0p3.eli"]


def test_plain_swap_torjail_does_not_manage_stops_the_deploy_whatever_the_memory():
    """A plain swap device that is no swap entry of fstab (swapon run by hand, say) is never switched off by the
    deploy; the relay still must not start while it is active."""
    result = plan_server("deploy_converged", **{"swap.SwapDevices": [
        {"device": "/dev/ada0p3.eli", "blocks": 2097152, "used": 0},
        {"device": "/dev/md5", "blocks": 65536, "used": 0}]})
    assert [(op.name, op.commands) for op in result.changed] == [(STOP_OP, [
        "echo 'torjail: plain swap on /dev/md5 is still active: reboot, then deploy again' >&2; exit 1"])]


# --- a swap file ----------------------------------------------------------------------------------------------

SWAP_FILE_FACTS = {
    "fstab.FstabEntries": {"path=/etc/fstab": [
        {"device": "/dev/ada0p2", "mountpoint": "/", "fstype": "ufs", "options": "rw", "dump": 1, "pass": 1}]},
    "swap.SwapDevices": [],
    "files.FindInFile": {FSTAB_PATTERN + "^md99\\.eli[[:space:]].*$": []},
    "files.File": {"path=/usr/swap0": None, "path=/usr/local/etc/rc.d/torjail_swapfile": None},
    "files.Directory": {"path=/usr/local/etc/rc.d/torjail_swapfile": None,
                        "path=/usr/local/etc/rc.d": {"user": "root", "group": "wheel", "mode": 755}},
}
SWAP_FILE_RC = {
    "torjail_swapfile_enable": "YES", "torjail_swapfile_path": "/usr/swap0", "torjail_swapfile_unit": "99",
    "torjail_swapfile_geli_flags": "-e AES-XTS -l 256 -s 4096"}
FILE_ON = "service torjail_swapfile start"


def _settings():
    from torjail.settings import build_settings
    return build_settings("server", {"identity": "on-relay", "relay_nickname": "TestRelay", "relay_contact": "ops@example.org",
                                     "public_ipv4": "203.0.113.10"})


def _plan_swap_file(fixture, facts):
    """A server without any swap whose settings ask for a 2G swap file."""
    base = server(fixture)
    return plan(DEPLOY, data={**base["data"], "swap_file_size": "2G"},
                facts=_merge_facts(base["facts"], {**SWAP_FILE_FACTS, **facts}))


def test_swap_file_is_written_in_full_mode_0600_from_the_start_and_encrypted_by_its_rc_script():
    """No fstab line (swapon(8) refuses md99.eli with file=), a file of zeros written under umask 077 to a
    temporary name and moved in place (never sparse, never readable by others, never half-written under the
    real name), the rc.d script with the GELI settings in rc.conf, and swap on md99.eli before the vault."""
    result = _plan_swap_file("deploy_fresh", {})
    commands = stable(result.commands)
    start = commands.index("if [ -e /usr/swap0 ]; then echo '/usr/swap0 exists: not creating it again' >&2; "
                           "exit 1; fi; rm -f /usr/swap0.torjail-new && (umask 077 && dd if=/dev/zero "
                           "of=/usr/swap0.torjail-new bs=1048576 count=2048 2>/dev/null) && "
                           "mv /usr/swap0.torjail-new /usr/swap0")
    assert commands[start + 1:commands.index(FILE_ON) + 1] == [
        "upload /usr/local/etc/rc.d/torjail_swapfile",
        "chmod 555 /usr/local/etc/rc.d/torjail_swapfile",
        "sysrc -f /etc/rc.conf torjail_swapfile_enable=YES torjail_swapfile_path=/usr/swap0 "
        "torjail_swapfile_unit=99 'torjail_swapfile_geli_flags=-e AES-XTS -l 256 -s 4096'",
        FILE_ON,
    ]
    assert commands.index(FILE_ON) < first_vault_command(commands)
    assert not [command for command in commands if "md99" in command or "truncate" in command and "swap0" in command]


def test_swap_file_rerun_changes_nothing():
    rc_conf = server("deploy_converged")["facts"]["rc.RcConf"]["jail=None, path=/etc/rc.conf"]
    result = _plan_swap_file("deploy_converged", {
        "swap.SwapDevices": [{"device": "/dev/md99.eli", "blocks": 2097152, "used": 0}],
        "files.File": {"path=/usr/swap0": {"size": 2**31, "mode": 600},
                       "path=/usr/local/etc/rc.d/torjail_swapfile": {"size": 1, "mode": 555}},
        "files.Sha1File": {"path=/usr/local/etc/rc.d/torjail_swapfile": SCRIPT_SUM},
        "rc.RcConf": {"jail=None, path=/etc/rc.conf": {**rc_conf, **SWAP_FILE_RC}},
    })
    assert [(op.name, op.commands) for op in result.changed] == []


def test_an_old_md99_eli_fstab_line_is_removed():
    """An fstab line `md99.eli ... file=...` makes swapon -aL fail at every boot on FreeBSD: the deploy drops it."""
    line = "md99.eli\tnone\tswap\tsw,file=/usr/swap0,late,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0"
    result = _plan_swap_file("deploy_fresh", {
        "files.FindInFile": {FSTAB_PATTERN + "^md99\\.eli[[:space:]].*$": [line]}})
    (removal,) = [op for op in result.operations if op.name == "No fstab entry for md99.eli (swapon(8) refuses it)"]
    assert [stable([command])[0] for command in removal.commands] == [
        "sed -i.BACKUP '/^md99\\.eli[[:space:]].*$/d' /etc/fstab && rm -f /etc/fstab.BACKUP"]


def test_a_plain_fstab_swap_file_stops_the_deploy_before_any_change():
    """`md99 ... file=/usr/swap0` swaps in the clear at every boot and fstab has no encrypted form of it: a reboot
    cannot help, so the deploy stops while planning and says how to replace it."""
    fstab_file_swap = {"device": "md99", "mountpoint": "none", "fstype": "swap",
                       "options": "sw,file=/usr/swap0,late", "dump": 0, "pass": 0}
    with pytest.raises(PyinfraError) as stopped:
        plan_server("deploy_fresh", **{
            "fstab.FstabEntries": {"path=/etc/fstab": [
                {"device": "/dev/ada0p2", "mountpoint": "/", "fstype": "ufs", "options": "rw", "dump": 1, "pass": 1},
                fstab_file_swap]},
            "swap.SwapDevices": [{"device": "/dev/md99", "blocks": 2097152, "used": 0}],
        })
    message = str(stopped.value)
    assert message.startswith("server: /etc/fstab swaps on the file /usr/swap0 through md99 in the clear")
    assert "swapoff /dev/md99 && mdconfig -d -u 99" in message and "set swap_file_size" in message


CONVERGED_ENTRY = {"device": "/dev/ada0p3.eli", "mountpoint": "none", "fstype": "swap",
                   "options": "sw,ealgo=AES-XTS,keylen=256,sectorsize=4096", "dump": 0, "pass": 0}
FSTAB_OP = "Swap on /dev/ada0p3 through GELI one-time encryption (fstab)"
ROOT_ENTRY = {"device": "/dev/ada0p2", "mountpoint": "/", "fstype": "ufs", "options": "rw", "dump": 1, "pass": 1}


def test_fstab_already_written_is_read_from_the_fstab_reading_alone():
    """The converged fstab line is known from the fstab the deploy read already: no grep of /etc/fstab."""
    result = plan_server("deploy_converged")
    assert not any(key == "files.FindInFile" and "/etc/fstab" in arguments
                   for key, arguments in result.fixture.asked)
    assert FSTAB_OP not in [op.name for op in result.operations]


@pytest.mark.parametrize("entries", [
    [ROOT_ENTRY, {**CONVERGED_ENTRY, "options": "sw,ealgo=AES-CBC,keylen=128,sectorsize=4096"}],
    [ROOT_ENTRY, CONVERGED_ENTRY, CONVERGED_ENTRY],
], ids=["other options", "twice"])
def test_fstab_line_other_than_the_deploys_is_rewritten(entries):
    result = plan_server("deploy_converged", **{"fstab.FstabEntries": {"path=/etc/fstab": entries}})
    assert FSTAB_OP in [op.name for op in result.operations]
