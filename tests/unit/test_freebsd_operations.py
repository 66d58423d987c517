"""Each FreeBSD operation yields exactly the expected commands, or nothing (a noop) when the host
already is as wanted; operations that could destroy data refuse instead.

Operations are planned through pyinfra's real operation machinery against fake facts
(tests/plan/harness.py), so arguments pass through pyinfra as in a deploy.
"""

from __future__ import annotations

import pytest
from pyinfra.api import HiddenValue, OperationError, OperationValueError

from harness import MissingFactError, plan_calls, plan_operation

from pyinfra.operations import server

from torjail.freebsd import geli, jail, kld, md, rc, swap, sysctl
from torjail.procedures import files as procedure_files

IMAGE = "/var/jails/tor.img"
PASSPHRASE = HiddenValue("correct horse battery staple")
RC = "jail=None, path=/etc/rc.conf"
LOADER = "jail=None, path=/boot/loader.conf"
SYSCTL_LINE = "extended_regex=False, interpolate_variables=False, path=/etc/sysctl.conf, pattern="


def md_unit(file=IMAGE, unit="md10"):
    return {unit: {"type": "vnode", "size": "2048M", "file": file}}


# --- md -------------------------------------------------------------------------------------------


def test_md_device_attaches_the_image_to_the_unit():
    op = plan_operation(md.device, 10, image=IMAGE, facts={"md.MdDevices": {}})
    assert op.commands == ["mdconfig -a -t vnode -f /var/jails/tor.img -u 10"]


@pytest.mark.parametrize("unit", [10, "md10", "/dev/md10"])
def test_md_device_noop_when_that_unit_backs_that_file(unit):
    op = plan_operation(md.device, unit, image=IMAGE, facts={"md.MdDevices": md_unit()})
    assert op.commands == []
    assert op.noops == ["md10 is already attached to /var/jails/tor.img"]


def test_md_device_refuses_a_unit_backing_another_file():
    with pytest.raises(OperationError, match="md10 is in use for /other.img"):
        plan_operation(md.device, 10, image=IMAGE, facts={"md.MdDevices": md_unit(file="/other.img")})


def test_md_device_refuses_the_image_on_another_unit():
    with pytest.raises(OperationError, match="already attached as md3"):
        plan_operation(md.device, 10, image=IMAGE, facts={"md.MdDevices": md_unit(unit="md3")})


def test_md_device_quotes_the_path_and_checks_the_unit():
    op = plan_operation(md.device, "md2", image="/var/my jails/t'or.img", facts={"md.MdDevices": {}})
    assert op.commands == ["mdconfig -a -t vnode -f '/var/my jails/t'\"'\"'or.img' -u 2"]
    with pytest.raises(OperationValueError):
        plan_operation(md.device, "ada0", image=IMAGE, facts={"md.MdDevices": {}})


def test_md_device_detached():
    op = plan_operation(md.device, "md10", present=False, facts={"md.MdDevices": md_unit()})
    assert op.commands == ["mdconfig -d -u 10"]
    op = plan_operation(md.device, "md10", present=False, facts={"md.MdDevices": {}})
    assert (op.commands, op.noops) == ([], ["md10 is already detached"])


# --- geli -----------------------------------------------------------------------------------------


def geli_facts(providers=None):
    return {"geli.GeliProviders": providers or {}}


@pytest.mark.parametrize("passphrase", ["plain text", HiddenValue("two\nlines"), HiddenValue("")])
def test_geli_passphrase_must_be_one_hidden_line(passphrase):
    with pytest.raises(OperationValueError):
        plan_operation(geli.provider, "md10", passphrase, facts=geli_facts())


def test_geli_provider_attached():
    op = plan_operation(geli.provider, "md10", PASSPHRASE, facts=geli_facts())
    assert op.commands == ["geli attach -j - md10 < [stdin]"]
    op = plan_operation(geli.provider, "md10", PASSPHRASE, detach_on_last_close=True, facts=geli_facts())
    assert op.commands == ["geli attach -d -j - md10 < [stdin]"]
    op = plan_operation(geli.provider, "md10", PASSPHRASE, facts=geli_facts(providers={"md10.eli": {}}))
    assert (op.commands, op.noops) == ([], ["md10.eli is already attached"])


def test_geli_provider_detached():
    op = plan_operation(geli.provider, "md10", attached=False, facts=geli_facts(providers={"md10.eli": {}}))
    assert op.commands == ["geli detach md10.eli"]
    op = plan_operation(geli.provider, "md10", attached=False, facts=geli_facts())
    assert (op.commands, op.noops) == ([], ["md10.eli is already detached"])


def test_geli_stdin_carries_exactly_the_passphrase():
    plan = plan_calls(lambda: geli.provider("md10", PASSPHRASE), facts=geli_facts())
    ((command,),) = plan.pyinfra_commands()
    assert command.connector_arguments["_stdin"] == "correct horse battery staple"
    assert "correct horse" not in command.get_raw_value()


# --- jail -----------------------------------------------------------------------------------------


RUNNING = {"jail.Jails": {"tor": {"jid": 1, "name": "tor"}}}


def test_jail_running_and_not():
    op = plan_operation(jail.jail, "tor", config="/etc/jail.conf.d/tor.conf", facts={"jail.Jails": {}})
    assert op.commands == ["jail -f /etc/jail.conf.d/tor.conf -c tor"]
    assert plan_operation(jail.jail, "tor", facts={"jail.Jails": {}}).commands == ["jail -c tor"]
    op = plan_operation(jail.jail, "tor", facts=RUNNING)
    assert (op.commands, op.noops) == ([], ["jail tor is already running"])

    assert plan_operation(jail.jail, "tor", running=False, facts=RUNNING).commands == ["jail -r tor"]
    op = plan_operation(jail.jail, "tor", running=False, facts={"jail.Jails": {}})
    assert (op.commands, op.noops) == ([], ["jail tor is already stopped"])
    with pytest.raises(OperationValueError):
        plan_operation(jail.jail, "tor; reboot", facts={"jail.Jails": {}})


# --- rc -------------------------------------------------------------------------------------------


def rc_facts(values, key=RC):
    return {"rc.RcConf": {key: values}}


def test_rc_value_sets_a_missing_or_wrong_value():
    assert plan_operation(rc.value, "pf_enable", "YES", facts=rc_facts({})).commands == [
        "sysrc -f /etc/rc.conf pf_enable=YES",
    ]
    assert plan_operation(rc.value, "pf_enable", "YES", facts=rc_facts({"pf_enable": "NO"})).commands == [
        "sysrc -f /etc/rc.conf pf_enable=YES",
    ]


def test_rc_value_noop_when_already_set():
    op = plan_operation(rc.value, "pf_enable", "YES", facts=rc_facts({"pf_enable": "YES"}))
    assert (op.commands, op.noops) == ([], ["pf_enable is already 'YES' in /etc/rc.conf"])


def test_rc_value_quotes_values_and_works_in_jails_and_other_files():
    op = plan_operation(rc.value, "ifconfig_lo1_alias0", "inet 10.0.0.1/32", facts=rc_facts({}))
    assert op.commands == ["sysrc -f /etc/rc.conf 'ifconfig_lo1_alias0=inet 10.0.0.1/32'"]
    op = plan_operation(rc.value, "tor_enable", "YES", jail="tor", facts=rc_facts({}, "jail=tor, path=/etc/rc.conf"))
    assert op.commands == ["sysrc -j tor -f /etc/rc.conf tor_enable=YES"]
    op = plan_operation(rc.value, "geom_eli_load", "YES", path="/boot/loader.conf", facts=rc_facts({}, LOADER))
    assert op.commands == ["sysrc -f /boot/loader.conf geom_eli_load=YES"]
    op = plan_operation(rc.value, "md_unit", 10, facts=rc_facts({"md_unit": "10"}))
    assert op.commands == []


def test_rc_value_removes():
    op = plan_operation(rc.value, "jail_list", present=False, facts=rc_facts({"jail_list": "tor"}))
    assert op.commands == ["sysrc -f /etc/rc.conf -x jail_list"]
    op = plan_operation(rc.value, "jail_list", present=False, facts=rc_facts({}))
    assert (op.commands, op.noops) == ([], ["jail_list is already unset in /etc/rc.conf"])


@pytest.mark.parametrize("variable", ["-x", "a b", "x;reboot", ""])
def test_rc_value_refuses_bad_names(variable):
    with pytest.raises(OperationValueError):
        plan_operation(rc.value, variable, "YES", facts=rc_facts({}))


def test_rc_values_set_what_differs_and_remove_what_is_there_in_one_command():
    facts = rc_facts({"ntpd_enable": "YES", "jail_list": "tor", "dumpdev": "AUTO"})
    op = plan_operation(rc.values, {"ntpd_enable": "YES", "dumpdev": "NO", "savecore_enable": "NO"},
                        unset=("jail_list", "pf_rules"), facts=facts)
    assert op.commands == ["{ sysrc -f /etc/rc.conf dumpdev=NO savecore_enable=NO ; } && "
                           "{ sysrc -f /etc/rc.conf -x jail_list ; }"]
    assert op.noops == ["ntpd_enable is already 'YES' in /etc/rc.conf", "pf_rules is already unset in /etc/rc.conf"]
    op = plan_operation(rc.values, {"ntpd_enable": "YES"}, jail="tor", facts=rc_facts({}, "jail=tor, path=/etc/rc.conf"))
    assert op.commands == ["sysrc -j tor -f /etc/rc.conf ntpd_enable=YES"]
    with pytest.raises(OperationValueError):
        plan_operation(rc.values, {"ntpd_enable": "YES", "x;reboot": "1"}, facts=rc_facts({}))


def test_rc_conf_is_read_once_and_again_only_after_an_operation_changed_what_it_holds():
    def deploy():
        rc.value("pf_enable", "YES")
        rc.value("pflog_enable", "YES")
        procedure_files.directory("/var/jails/tor", mode="755")
        rc.value("jail_enable", "YES")
        server.shell("touch /etc/rc.conf.local")
        rc.value("jail_list", "tor")

    facts = {**rc_facts({"pflog_enable": "YES"}), "files.Directory": {"path=/var/jails/tor": None}}
    plan = plan_calls(deploy, facts=facts)
    assert [op.commands for op in plan.operations] == [
        ["sysrc -f /etc/rc.conf pf_enable=YES"],
        [],
        ["{ mkdir -p /var/jails/tor ; } && { chmod 755 /var/jails/tor ; }"],
        ["sysrc -f /etc/rc.conf jail_enable=YES"],
        ["touch /etc/rc.conf.local"],
        ["sysrc -f /etc/rc.conf jail_list=tor"],
    ]
    assert plan.fixture.asked.count(("rc.RcConf", RC)) == 1

    # execution starts from the planning reading; sysrc updates the reading it changes, and the directory is
    # another path, so rc.conf is read again only after the shell command, which says nothing of what it changes
    plan.pyinfra_commands(executing=True)
    assert plan.fixture.asked.count(("rc.RcConf", RC)) == 2


def test_stale_surveyed_readings_are_read_again_together():
    from torjail.freebsd import readings

    def deploy():
        readings.survey([(rc.RcConf, {"path": "/etc/rc.conf", "jail": None}),
                         (rc.RcConf, {"path": "/boot/loader.conf", "jail": None})])
        server.shell("true")
        rc.value("pf_enable", "YES")
        rc.value("geom_eli_load", "YES", path="/boot/loader.conf")

    facts = {"rc.RcConf": {RC: {}, LOADER: {}}}
    plan = plan_calls(deploy, facts=facts)
    assert plan.fixture.asked == [] and len(plan.fixture.surveyed) == 2
    # the shell command may have changed anything: the first rc.conf reading asked after it is read again with
    # loader.conf's, in one survey, and loader.conf is then not read alone
    plan.pyinfra_commands(executing=True)
    assert plan.fixture.asked == [] and len(plan.fixture.surveyed) == 4


# --- kld ------------------------------------------------------------------------------------------


def kld_facts(modules, loader):
    return {"kld.KernelModules": modules, "rc.RcConf": {LOADER: loader}}


def test_kld_module_loads_now_and_at_boot():
    op = plan_operation(kld.module, "geom_eli", facts=kld_facts(["kernel"], {}))
    assert op.commands == ["{ kldload -n geom_eli ; } && { sysrc -f /boot/loader.conf geom_eli_load=YES ; }"]


def test_kld_module_noop_when_loaded_and_set():
    op = plan_operation(kld.module, "pf", facts=kld_facts(["kernel", "pf"], {"pf_load": "YES"}))
    assert op.commands == []
    assert op.noops == ["pf is already loaded", "pf_load is already 'YES' in /boot/loader.conf"]


def test_kld_module_only_the_missing_half():
    op = plan_operation(kld.module, "pf", facts=kld_facts(["kernel", "pf"], {"pf_load": "NO"}))
    assert op.commands == ["sysrc -f /boot/loader.conf pf_load=YES"]
    op = plan_operation(kld.module, "pf", at_boot=False, facts=kld_facts(["kernel"], {"pf_load": "YES"}))
    assert op.commands == ["{ kldload -n pf ; } && { sysrc -f /boot/loader.conf -x pf_load ; }"]
    op = plan_operation(kld.module, "pf", loaded=False, at_boot=False, facts=kld_facts(["kernel", "pf"], {}))
    assert op.commands == ["kldunload pf"]
    with pytest.raises(OperationValueError):
        plan_operation(kld.module, "pf.ko", facts=kld_facts([], {}))


def test_kld_modules_load_only_the_missing_ones_with_one_kldload():
    op = plan_operation(kld.modules, ("geom_eli", "pf", "pflog"), facts=kld_facts(["kernel", "pf"], {"pf_load": "YES"}))
    assert op.commands == ["{ kldload -n geom_eli pflog ; } && "
                           "{ sysrc -f /boot/loader.conf geom_eli_load=YES pflog_load=YES ; }"]
    op = plan_operation(kld.modules, ("pf", "pflog"), loaded=False, at_boot=False,
                        facts=kld_facts(["kernel", "pf", "pflog"], {"pf_load": "YES"}))
    assert op.commands == ["{ kldunload pf pflog ; } && { sysrc -f /boot/loader.conf -x pf_load ; }"]
    with pytest.raises(OperationValueError):
        plan_operation(kld.modules, ("pf", "../pf"), facts=kld_facts([], {}))


# --- sysctl ---------------------------------------------------------------------------------------


def sysctl_facts(current, lines=None, key="kern.ipc.somaxconn", wanted="4096"):
    pattern = "^" + key.replace(".", "\\.") + "[[:space:]]*=.*$"
    return {
        "sysctl.Sysctls": {f"names=['{key}']": {key: current} if current is not None else {}},
        "files.FindInFile": {
            SYSCTL_LINE + pattern: lines,
            SYSCTL_LINE + f"^{key}={wanted}$": [],
        },
    }


def test_sysctl_value_sets_now_and_appends_its_own_line():
    op = plan_operation(sysctl.value, "kern.ipc.somaxconn", 4096, facts=sysctl_facts("128", []))
    # one remote command: the line is written only when the value could be set
    assert op.commands == ["{ sysctl kern.ipc.somaxconn=4096 ; } && { echo kern.ipc.somaxconn=4096 >> /etc/sysctl.conf ; }"]


def test_sysctl_value_replaces_a_spaced_or_wrong_line():
    op = plan_operation(sysctl.value, "kern.ipc.somaxconn", 4096, facts=sysctl_facts("4096", ["kern.ipc.somaxconn = 1024"]))
    assert len(op.commands) == 1
    assert op.commands[0].startswith("sed -i")
    assert "s/^kern\\.ipc\\.somaxconn[[:space:]]*=.*$/kern.ipc.somaxconn=4096/" in op.commands[0]


def test_sysctl_value_noop_when_set_and_persisted():
    op = plan_operation(sysctl.value, "kern.ipc.somaxconn", 4096, facts=sysctl_facts("4096", ["kern.ipc.somaxconn=4096"]))
    assert op.commands == []
    assert op.noops[0] == "kern.ipc.somaxconn is already 4096"


def test_sysctl_raise_only_never_lowers():
    facts = sysctl_facts("8192", ["kern.ipc.somaxconn=16384"])
    op = plan_operation(sysctl.value, "kern.ipc.somaxconn", 4096, raise_only=True, facts=facts)
    assert op.commands == []
    assert op.noops == [
        "kern.ipc.somaxconn is already 8192 (at least 4096)",
        "/etc/sysctl.conf already sets kern.ipc.somaxconn to at least 8192",
    ]


def test_sysctl_raise_only_persists_the_higher_current_value():
    """An autotuned or hand-raised value above the wanted one is what sysctl.conf keeps."""
    facts = sysctl_facts("8192", [], wanted="8192")
    op = plan_operation(sysctl.value, "kern.ipc.somaxconn", 4096, raise_only=True, facts=facts)
    assert op.commands == ["echo kern.ipc.somaxconn=8192 >> /etc/sysctl.conf"]


def test_sysctl_raise_only_raises_a_lower_value_and_line():
    facts = sysctl_facts("128", ["kern.ipc.somaxconn=1024"])
    op = plan_operation(sysctl.value, "kern.ipc.somaxconn", 4096, raise_only=True, facts=facts)
    assert len(op.commands) == 1
    assert op.commands[0].startswith("{ sysctl kern.ipc.somaxconn=4096 ; } && { sed -i")


def test_sysctl_without_persist_and_bad_input():
    op = plan_operation(sysctl.value, "net.inet.ip.random_id", 1, persist=False, facts=sysctl_facts("0", key="net.inet.ip.random_id"))
    assert op.commands == ["sysctl net.inet.ip.random_id=1"]
    with pytest.raises(OperationValueError):
        plan_operation(sysctl.value, "kern.ipc.somaxconn", "lots", raise_only=True, facts=sysctl_facts("1"))
    with pytest.raises(OperationValueError):
        plan_operation(sysctl.value, "kern ipc", 1, facts=sysctl_facts("1"))


def test_sysctl_values_set_what_differs_with_one_sysctl_and_persist_each_line():
    names = "names=['kern.ipc.somaxconn', 'kern.maxfiles', 'net.inet.ip.random_id']"
    somaxconn, maxfiles, random_id = (SYSCTL_LINE + sysctl.line_pattern(key) for key in
                                      ("kern.ipc.somaxconn", "kern.maxfiles", "net.inet.ip.random_id"))
    facts = {"sysctl.Sysctls": {names: {"kern.ipc.somaxconn": "8192", "kern.maxfiles": "1024",
                                        "net.inet.ip.random_id": "0"}},
             "files.FindInFile": {somaxconn: ["kern.ipc.somaxconn=8192"], maxfiles: [], random_id: []}}
    op = plan_operation(sysctl.values, {"net.inet.ip.random_id": 1, "kern.ipc.somaxconn": 4096, "kern.maxfiles": 65536},
                        raise_only=("kern.ipc.somaxconn", "kern.maxfiles"), facts=facts)
    assert op.commands == ["{ sysctl net.inet.ip.random_id=1 kern.maxfiles=65536 ; } && "
                           "{ echo net.inet.ip.random_id=1 >> /etc/sysctl.conf ; } && "
                           "{ echo kern.maxfiles=65536 >> /etc/sysctl.conf ; }"]
    with pytest.raises(OperationValueError, match="raise_only names 'kern.maxfiles'"):
        plan_operation(sysctl.values, {"kern.ipc.somaxconn": 4096}, raise_only=("kern.maxfiles",), facts=facts)


# --- swap -----------------------------------------------------------------------------------------


ELI_OPTIONS = "sw,ealgo=AES-XTS,keylen=256,sectorsize=4096"


def swap_facts(active=(), providers=None):
    return {
        "swap.SwapDevices": [{"device": device, "blocks": 2097152, "used": 0} for device in active],
        "geli.GeliProviders": providers or {},
    }


def test_swap_device_eli_runs_geli_onetime_with_the_fstab_options():
    op = plan_operation(swap.device, "/dev/ada0p3.eli", options=ELI_OPTIONS, facts=swap_facts())
    assert op.commands == [
        "geli onetime -d -e AES-XTS -l 256 -s 4096 /dev/ada0p3",
        "swapon /dev/ada0p3.eli",
    ]


def test_swap_device_variants():
    op = plan_operation(swap.device, "ada0p3.eli", options="sw,notrim", facts=swap_facts())
    assert op.commands == ["geli onetime -d -T -s 4096 /dev/ada0p3", "swapon /dev/ada0p3.eli"]
    op = plan_operation(swap.device, "/dev/ada0p3.eli", facts=swap_facts(providers={"ada0p3.eli": {}}))
    assert op.commands == ["swapon /dev/ada0p3.eli"]
    assert plan_operation(swap.device, "/dev/ada0p3", facts=swap_facts()).commands == ["swapon /dev/ada0p3"]
    op = plan_operation(swap.device, "/dev/ada0p3.eli", facts=swap_facts(active=["/dev/ada0p3.eli"]))
    assert (op.commands, op.noops) == ([], ["swap on /dev/ada0p3.eli is already on"])
    with pytest.raises(OperationValueError):
        plan_operation(swap.device, "/dev/ada0p3.eli", options="sw,file=/usr/swap0", facts=swap_facts())


def test_swap_device_disabled():
    op = plan_operation(swap.device, "/dev/ada0p3", enabled=False, facts=swap_facts(active=["/dev/ada0p3"]))
    assert op.commands == ["swapoff /dev/ada0p3"]
    op = plan_operation(swap.device, "ada0p3", enabled=False, facts=swap_facts())
    assert (op.commands, op.noops) == ([], ["swap on /dev/ada0p3 is already off"])


def test_a_fact_missing_from_the_fixture_is_named():
    with pytest.raises(MissingFactError, match="geli.GeliProviders"):
        plan_operation(geli.provider, "md10", PASSPHRASE, facts={})
