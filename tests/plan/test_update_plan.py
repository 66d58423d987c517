"""update.py planned against a converged relay (fixtures/deploy_converged.yaml) with patches and package upgrades
waiting or not: what a dry run lists, the commands, what restarts, and a locked jail refused."""

from __future__ import annotations

import pytest
from harness import plan
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import ROOT, plan_server, server

UPDATE = ROOT / "update.py"
HOST = "basedir=None, release=None"
JAIL = "basedir=/var/jails/tor, release=14.3-RELEASE"
NONE_NEEDED = {"version": "14.3-RELEASE-p2", "updated": [], "added": [], "removed": [], "error": None}
USERLAND = {**NONE_NEEDED, "updated": ["/bin/freebsd-version", "/lib/libc.so.7"]}
KERNEL = {**USERLAND, "updated": [*USERLAND["updated"], "/boot/kernel/kernel"]}
PATCHED = {"update.BaseUpdates": {HOST: NONE_NEEDED, JAIL: NONE_NEEDED},
           "update.PackageUpgrades": {"jail=None": {}, "jail=tor": {}}}
NEW_TOR = {"jail=None": {}, "jail=tor": {"tor": ("0.4.8.16", "0.4.8.17"), "libevent": ("2.1.12", "2.1.13")}}
JAIL_INSTALL = ("jail -f /etc/jail.conf.d/tor.conf -r tor && mount -t ufs -o nosuid /dev/md10.eli /var/jails/tor && "
                "{ status=0; { find /var/jails/tor -xdev -type l")


def plan_update(**facts):
    return plan_server("deploy_converged", deploy=UPDATE, **{**PATCHED, **facts})


def changed(result):
    return {op.name: op.commands for op in result.changed}


def test_a_patched_host_changes_nothing():
    assert plan_update().changed == []


def test_host_patches_are_listed_and_installed_without_a_terminal_or_a_pager():
    result = plan_update(**{"update.BaseUpdates": {HOST: USERLAND, JAIL: NONE_NEEDED}})
    assert changed(result) == {
        "Host base system to 14.3-RELEASE-p2 (2 files: /bin/freebsd-version, /lib/libc.so.7)":
            ["env PAGER=cat freebsd-update --not-running-from-cron install"],
    }


def test_a_new_kernel_is_announced_with_the_reboot_and_unlock_it_needs(caplog):
    plan_update(**{"update.BaseUpdates": {HOST: KERNEL, JAIL: NONE_NEEDED}})
    assert "runs after a reboot" in caplog.text and "unlock.py" in caplog.text


def test_host_packages_are_upgraded_with_their_versions_in_the_plan():
    upgrades = {"jail=None": {"pkg": ("2.1.0", "2.1.2"), "ca_root_nss": (None, "3.108")}, "jail=tor": {}}
    result = plan_update(**{"update.PackageUpgrades": upgrades})
    assert changed(result) == {"Host packages (ca_root_nss 3.108 (new), pkg 2.1.0 -> 2.1.2)":
                               ["env ASSUME_ALWAYS_YES=yes pkg upgrade -y"]}


def test_a_new_tor_is_installed_inside_the_jail_and_tor_restarted_in_the_same_command():
    result = plan_update(**{"update.PackageUpgrades": NEW_TOR})
    assert changed(result) == {
        "Jail tor packages (libevent 2.1.12 -> 2.1.13, tor 0.4.8.16 -> 0.4.8.17; tor restarts)":
            ["env ASSUME_ALWAYS_YES=yes pkg -j tor upgrade -y && service -j tor tor restart"],
    }


def test_other_jail_packages_do_not_restart_tor():
    result = plan_update(**{"update.PackageUpgrades": {"jail=None": {}, "jail=tor": {"curl": ("8.1", "8.2")}}})
    assert changed(result) == {"Jail tor packages (curl 8.1 -> 8.2)": ["env ASSUME_ALWAYS_YES=yes pkg -j tor upgrade -y"]}


def test_the_jail_userland_is_patched_with_the_jail_stopped_and_started_again():
    result = plan_update(**{"update.BaseUpdates": {HOST: NONE_NEEDED, JAIL: USERLAND}})
    ((name, (command,)),) = changed(result).items()
    assert name == ("Jail tor userland to 14.3-RELEASE-p2 (2 files: /bin/freebsd-version, /lib/libc.so.7; "
                    "the jail restarts)")
    assert command.startswith(JAIL_INSTALL)
    install = ("env PAGER=cat freebsd-update --not-running-from-cron -b /var/jails/tor --currently-running "
               "14.3-RELEASE install")
    assert command.index("leads out of the jail root") < command.index(install)
    assert command.endswith("umount /var/jails/tor && jail -f /etc/jail.conf.d/tor.conf -c tor && exit $status; }")


def test_a_new_tor_with_a_patched_userland_restarts_once_with_the_jail():
    result = plan_update(**{"update.PackageUpgrades": NEW_TOR, "update.BaseUpdates": {HOST: NONE_NEEDED,
                                                                                      JAIL: USERLAND}})
    commands = [command for op in result.changed for command in op.commands]
    assert commands[0] == "env ASSUME_ALWAYS_YES=yes pkg -j tor upgrade -y"
    assert commands[1].startswith(JAIL_INSTALL) and len(commands) == 2


def test_a_release_past_its_end_of_life_stops_the_update_with_what_fetch_said():
    failed = {**NONE_NEEDED, "error": "WARNING: FreeBSD 14.3-RELEASE-p9 HAS PASSED ITS END-OF-LIFE DATE."}
    with pytest.raises(PyinfraError, match="freebsd-update fetch failed for the host: WARNING: .*END-OF-LIFE.*"
                                           "nothing was changed"):
        plan_update(**{"update.BaseUpdates": {HOST: failed, JAIL: NONE_NEEDED}})


def test_a_locked_jail_is_refused_before_anything_changes():
    fixture = server("deploy_locked")
    with pytest.raises(PyinfraError, match="jail tor is not running .* run unlock.py first; nothing was changed"):
        plan(UPDATE, data=fixture["data"], facts={**fixture["facts"], **PATCHED})


# ------------------------------------------------------------------ a newer jail_release in deploy.py

DEPLOY = ROOT / "deploy.py"
POPULATED = "release.RootPopulated"


def test_a_newer_jail_release_unpacks_over_the_running_jail_with_its_users_and_var_kept():
    result = plan_server("deploy_converged", **{POPULATED: {"root=/var/jails/tor": "14.2-RELEASE"}})
    (upgrade,) = [op for op in result.changed if op.name.startswith("Jail userland")]
    assert upgrade.name == "Jail userland 14.2-RELEASE -> 14.3-RELEASE (users, /var kept; the jail restarts)"
    (command,) = upgrade.commands
    assert command.startswith(JAIL_INSTALL)
    tar = ("tar -x -f /var/cache/torjail/14.3-RELEASE-amd64/base.txz -C /var/jails/tor --unlink --exclude ./var "
           "--exclude ./root --exclude ./etc/master.passwd --exclude ./etc/passwd --exclude ./etc/group "
           "--exclude ./etc/pwd.db --exclude ./etc/spwd.db && rm -f /var/jails/tor/.torjail-base && "
           "echo 14.3-RELEASE > /var/jails/tor/.torjail-base")
    assert command.index("leads out of the jail root") < command.index(tar)
    assert command.endswith("umount /var/jails/tor && jail -f /etc/jail.conf.d/tor.conf -c tor && exit $status; }")


def test_the_same_release_is_never_unpacked_again():
    assert not [op for op in plan_server("deploy_converged").operations
                if op.name.startswith("Jail userland") and op.changed]


@pytest.mark.parametrize("populated", ["15.0-RELEASE", "13.5-RELEASE"])
def test_an_older_or_other_major_release_is_refused_before_anything_changes(populated):
    with pytest.raises(PyinfraError, match=f"setting 'jail_release': the jail root holds {populated}.*nothing was "
                                           "changed"):
        plan_server("deploy_converged", **{POPULATED: {"root=/var/jails/tor": populated}})
