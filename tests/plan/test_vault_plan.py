"""deploy.py never loses the vault: every state of a server that could lead it to make a new, empty vault (and a
new relay identity) in place of one the server has, or to ignore a setting the image does not follow, stops the
deploy before its first operation, with a message naming the host, the setting and the way out.

Servers are the fixtures of test_deploy_plan.py with a few facts changed.
"""

from __future__ import annotations

import copy

import pytest
from harness import plan
from test_deploy_plan import (  # noqa: F401 (passphrase, planned_operations: fixtures)
    DEPLOY,
    MARKER,
    _merge_facts,
    passphrase,
    planned_operations,
    server,
)

from torjail.tasks.vault import VaultError, VaultMissing, VaultNoRoom

IMAGE = "path=/var/jails/tor.img"
MOVED = "/srv/vault/tor.img"
JAIL_CONF = "path=/etc/jail.conf.d/tor.conf"
NOTHING_MOUNTED = {"/": {"device": "/dev/ada0p2", "type": "ufs", "options": ["rw"]},
                   "/dev": {"device": "devfs", "type": "devfs", "options": ["rw"]}}


def image_files(name: str, path: str = IMAGE, **changes) -> dict:
    """The image.ImageFiles value of fixture NAME at the default image path, with `changes` applied (a dict for
    `image` is merged into it)."""
    found = copy.deepcopy(server(name)["facts"]["image.ImageFiles"][IMAGE])
    for key, value in changes.items():
        found[key] = {**found[key], **value} if isinstance(value, dict) else value
    return {path: found}


def absent(**changes) -> dict:
    return image_files("deploy_fresh", **changes)


def plan_with(name: str, data: dict | None = None, **facts):
    fixture = server(name)
    return plan(DEPLOY, data={**fixture["data"], **(data or {})}, facts=_merge_facts(fixture["facts"], facts))


# --- image_path or md_unit changed under a live vault ---------------------------------------------------------


def test_image_path_changed_under_a_running_jail_stops_before_any_operation(planned_operations):  # noqa: F811
    """The old code unmounted the running jail's root and built an empty vault at the new path."""
    with pytest.raises(VaultError) as error:
        plan_with("deploy_converged", data={"image_path": MOVED},
                  **{"image.ImageFiles": image_files("deploy_fresh", path=f"path={MOVED}")})
    message = str(error.value)
    assert message.startswith("server: a vault is live on this host (md10 is attached to /var/jails/tor.img; "
                              "md10.eli is attached; the jail root /var/jails/tor is mounted from /dev/md10.eli "
                              "(image /var/jails/tor.img); the jail tor is running)")
    assert "setting 'image_path' (/srv/vault/tor.img, md_unit 10)" in message
    assert ("stop the jail (service jail stop tor), unmount /var/jails/tor if it is still mounted, detach the image "
            "(geli detach mdN.eli; mdconfig -d -u N), mv the image file to its new path, then set image_path and run "
            "unlock.py, then deploy") in message
    assert planned_operations == []


def test_image_path_and_md_unit_changed_under_a_running_jail_stops():
    """With md_unit changed too, only the mounted jail root and the running jail show the live vault."""
    with pytest.raises(VaultError, match=r"a vault is live on this host \(the jail root /var/jails/tor is mounted "
                                         r"from /dev/md10.eli \(image /var/jails/tor.img\); the jail tor is running\)"):
        plan_with("deploy_converged", data={"image_path": MOVED, "md_unit": 11},
                  **{"image.ImageFiles": image_files("deploy_fresh", path=f"path={MOVED}")})


def test_image_path_changed_with_the_old_image_still_unlocked_stops():
    """Jail stopped, root unmounted, but md10.eli still attached to the old image: still a live vault."""
    with pytest.raises(VaultError, match=r"a vault is live on this host \(md10 is attached to /var/jails/tor.img; "
                                         r"md10.eli is attached\)"):
        plan_with("deploy_converged", data={"image_path": MOVED},
                  **{"image.ImageFiles": image_files("deploy_fresh", path=f"path={MOVED}"),
                     "mount.MountPoints": NOTHING_MOUNTED, "jail.Jails": {}})


def test_md_unit_changed_after_the_image_exists_names_the_setting(planned_operations):  # noqa: F811
    with pytest.raises(VaultError, match=r"server: setting 'md_unit' is 11 but /var/jails/tor.img is attached as "
                                         r"md10: set md_unit to 10"):
        plan_with("deploy_converged", data={"md_unit": 11})
    assert planned_operations == []


# --- a marker that does not name the image at its path ---------------------------------------------------------


def test_restored_image_at_a_stale_marker_is_never_removed(planned_operations):  # noqa: F811
    """A marker left beside the path once made the deploy `rm -f` whatever image was there, a restored one too."""
    restored = image_files("deploy_half_made", image={"seal": "7" * 64, "md_unit": None})
    with pytest.raises(VaultError) as error:
        plan_with("deploy_half_made", **{"image.ImageFiles": restored, "md.MdDevices": {}, "geli.GeliProviders": {}})
    assert str(error.value) == (
        f"server: {MARKER} says a half-made image is at /var/jails/tor.img, but the file there is not the one it "
        "names (its last sector differs): torjail will not remove or initialise it. If that file is your vault, "
        f"delete the stale marker {MARKER} by hand, then deploy again.")
    assert planned_operations == []


def test_marker_of_an_older_torjail_names_no_image():
    """An empty marker (torjail made them so before they named their image) matches nothing."""
    with pytest.raises(VaultError, match="is not the one it names"):
        plan_with("deploy_half_made", **{"image.ImageFiles": image_files("deploy_half_made", marker="")})


# --- a missing image on a host that had one ----------------------------------------------------------------------


@pytest.mark.parametrize("evidence, facts, says", [
    ("record", {"image.ImageFiles": absent(record=True)},
     "torjail's record /var/db/torjail/images/var/jails/tor.img says an image was made there"),
    ("marker", {"image.ImageFiles": absent(marker="a" * 64)},
     f"its marker {MARKER} is still there"),
    ("jail configuration", {"files.File": {JAIL_CONF: {"user": "root", "group": "wheel", "mode": 644, "size": 700}}},
     "the jail tor is configured (/etc/jail.conf.d/tor.conf)"),
])
def test_missing_image_stops_the_deploy(evidence, facts, says, planned_operations):  # noqa: F811
    with pytest.raises(VaultMissing) as error:
        plan_with("deploy_fresh", **facts)
    message = str(error.value)
    assert message.startswith("server: the encrypted image is missing: there is no /var/jails/tor.img (setting "
                              f"'image_path'), but {says}.")
    assert "delete " in message and "/etc/jail.conf.d/tor.conf by hand, then deploy again" in message
    assert planned_operations == []


def test_image_gone_while_its_provider_is_unlocked_and_unmounted_stops():
    """The file moved away while md10.eli stayed attached and nothing is mounted on the jail root."""
    with pytest.raises(VaultError, match=r"a vault is live on this host \(md10 is attached to /var/jails/tor.img; "
                                         r"md10.eli is attached\)"):
        plan_with("deploy_unlocked_not_running", **{"image.ImageFiles": absent(record=True)})


def test_the_way_to_a_new_vault_is_deleting_what_says_there_was_one():
    """With the record and the jail configuration gone (the documented way to start over), a new vault is made."""
    result = plan_with("deploy_fresh")
    assert any(command.startswith("test -d /var/jails || install -d -m 0700 /var/jails") for command in result.commands)


# --- free space --------------------------------------------------------------------------------------------------


def test_image_that_would_not_fit_stops_the_deploy(planned_operations):  # noqa: F811
    with pytest.raises(VaultNoRoom, match=r"server: setting 'image_size' is 8G but the free space where "
                                          r"/var/jails/tor.img would go is 8388607 KiB"):
        plan_with("deploy_fresh", **{"image.ImageFiles": absent(free_kb=8 * 2**20 - 1)})
    assert planned_operations == []


def test_half_made_image_is_remade_only_when_it_fits():
    with pytest.raises(VaultNoRoom, match="would go is -1024 KiB"):
        plan_with("deploy_half_made", **{"image.ImageFiles": image_files("deploy_half_made", free_kb=-1024)})


def test_exactly_image_size_free_is_enough():
    result = plan_with("deploy_fresh", **{"image.ImageFiles": absent(free_kb=8 * 2**20)})
    assert "Image /var/jails/tor.img (8G)" in [op.name for op in result.operations]


# --- GELI settings drift ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting, value, found", [
    ("geli_cipher", "AES-CBC", "AES-XTS"),
    ("geli_key_length", 128, "256"),
    ("geli_sector_size", 512, "4096"),
])
def test_geli_setting_changed_after_the_image_exists_stops_the_deploy(setting, value, found,
                                                                      planned_operations):  # noqa: F811
    """The old deploy reported no change while the image kept its own cipher, key length and sector size."""
    with pytest.raises(VaultError) as error:
        plan_with("deploy_converged", data={setting: value})
    assert str(error.value).startswith(
        f"server: setting '{setting}' is {value} but the image /var/jails/tor.img (md10.eli) was made with {found}: "
        f"GELI settings take effect only when an image is made. Set {setting} to {found}")
    assert planned_operations == []


def test_geli_cipher_compares_as_geli_spells_it():
    """geli list prints CAMELLIA-CBC for the setting's Camellia-CBC: the same cipher, no drift (the swap, made
    with AES-XTS, is another matter)."""
    providers = copy.deepcopy(server("deploy_converged")["facts"]["geli.GeliProviders"])
    providers["md10.eli"]["cipher"] = "CAMELLIA-CBC"
    result = plan_with("deploy_converged", data={"geli_cipher": "Camellia-CBC"},
                       **{"geli.GeliProviders": providers})
    assert not [op.name for op in result.changed if "md10" in op.name or "/var/jails" in op.name]


# --- a vault without torjail's record ----------------------------------------------------------------------


def test_a_vault_without_its_record_gets_one_and_nothing_else_changes():
    """A vault made before torjail kept records (or moved to image_path by hand) has none: without it, a later
    deploy finding the path empty could not tell the host ever had a vault. The deploy writes it, and only it."""
    result = plan_with("deploy_converged", **{"image.ImageFiles": image_files("deploy_converged", record=False)})
    assert [op.name for op in result.changed] == ["Record of the image /var/jails/tor.img"]
    (command,) = result.changed[0].commands
    assert command.startswith("if [ -f /var/jails/tor.img ]; then mkdir -p /var/db/torjail/images/var/jails && "
                              "echo 'torjail made an encrypted image at /var/jails/tor.img.")
    assert command.endswith("> /var/db/torjail/images/var/jails/tor.img; fi")


def test_a_recorded_vault_is_not_recorded_again():
    result = plan_with("deploy_converged")
    assert "Record of the image /var/jails/tor.img" not in [op.name for op in result.operations]
