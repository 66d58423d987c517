"""The plan harness plans a real deploy file against YAML fact fixtures, and the GELI passphrase
never shows up in anything pyinfra records or prints about the operations that use it."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import STDIN_MARK, MissingFactError, plan, pyinfra_records

from torjail.procedures.image import belongs_guard

SAMPLE = Path(__file__).parent / "samples" / "unlock_sample.py"
FIXTURES = Path(__file__).parent / "fixtures"
PASSPHRASE = "Tr0ub4dor&3-never-printed"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def sample_passphrase(monkeypatch):
    monkeypatch.setenv("SAMPLE_GELI_PASSPHRASE", PASSPHRASE)


def fixture_facts(name: str) -> dict:
    return yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())["facts"]


def test_fresh_server_plans_every_step_in_order():
    result = plan(SAMPLE, fixture=FIXTURES / "fresh.yaml")
    guard, seal = belongs_guard("/var/jails/tor.img"), "tail -c 512 /var/jails/tor.img | sha256"
    marker = "/var/jails/tor.img.torjail-incomplete"
    created_tail = [command for command in result.commands if command.startswith("if [ -e /var/jails/tor.img ]")]
    assert len(created_tail) == 1 and f"sha256 > {marker} && truncate -s 2G /var/jails/tor.img" in created_tail[0]
    assert result.commands == [
        "{ kldload -n geom_eli ; } && { sysrc -f /boot/loader.conf geom_eli_load=YES ; }",
        "sysrc -f /etc/rc.conf dumpdev=NO",
        "sysrc -f /etc/rc.conf jail_enable=YES",
        "{ sysctl kern.ipc.somaxconn=4096 ; } && { echo kern.ipc.somaxconn=4096 >> /etc/sysctl.conf ; }",
        "test -d /var/jails || install -d -m 0700 /var/jails",
        *created_tail,
        f"{guard}mdconfig -a -t vnode -f /var/jails/tor.img -u 10",
        f"{guard}geli init -e AES-XTS -l 256 -s 4096 -B none -J - md10 && {seal} > {marker} {STDIN_MARK}",
        f"{guard}geli attach -j - md10 {STDIN_MARK}",
        "jail -f /etc/jail.conf.d/tor.conf -c tor",
    ]
    assert [op.name for op in result.operations][:2] == ["kld.module", "rc.value"]
    assert ["image.created", "image.encrypted"] == [op.name for op in result.operations if op.name.startswith("image.")]


def test_converged_server_changes_nothing():
    result = plan(SAMPLE, fixture=FIXTURES / "converged.yaml")
    assert result.changed == []
    assert all(op.noops for op in result.operations), "every unchanged operation says why"


def test_locked_image_is_attached_never_initialised():
    """After a reboot: the image carries GELI metadata, nothing is attached or running."""
    facts = fixture_facts("converged")
    facts.update({"md.MdDevices": {}, "geli.GeliProviders": {}, "jail.Jails": {}})
    result = plan(SAMPLE, facts=facts)
    assert result.commands == [
        "mdconfig -a -t vnode -f /var/jails/tor.img -u 10",
        f"geli attach -j - md10 {STDIN_MARK}",
        "jail -f /etc/jail.conf.d/tor.conf -c tor",
    ]
    assert not any(command.startswith(("geli init", "newfs")) for command in result.commands)


def test_image_of_unknown_content_stops_the_plan():
    facts = fixture_facts("fresh")
    facts["geli.GeliImage"] = {"path=/var/jails/tor.img": {"state": "unknown", "size": 4096, "md_unit": None}}
    with pytest.raises(RuntimeError, match="holds no GELI metadata"):
        plan(SAMPLE, facts=facts)


def test_a_missing_fact_is_named_with_its_arguments():
    facts = fixture_facts("fresh")
    del facts["jail.Jails"]
    with pytest.raises(MissingFactError, match="no fact jail.Jails"):
        plan(SAMPLE, facts=facts)

    facts = fixture_facts("fresh")
    facts["rc.RcConf"].pop("jail=None, path=/etc/rc.conf")
    with pytest.raises(MissingFactError, match=r"rc.RcConf but not for arguments 'jail=None, path=/etc/rc.conf'"):
        plan(SAMPLE, facts=facts)


def test_fixture_data_reaches_host_data(tmp_path):
    deploy = tmp_path / "deploy.py"
    deploy.write_text(
        "from pyinfra import host\nfrom torjail.freebsd import rc\nrc.value('hostname', host.data.relay_host)\n",
    )
    result = plan(deploy, facts={"rc.RcConf": {"jail=None, path=/etc/rc.conf": {}}}, data={"relay_host": "r1"})
    assert result.commands == ["sysrc -f /etc/rc.conf hostname=r1"]


def test_passphrase_absent_from_everything_pyinfra_records(capsys, caplog):
    """Commands, stdin aside, operation names/args/hashes, the state pyinfra dumps with
    --debug-operations (text and JSON) and the lines it logs when an operation starts."""
    caplog.set_level(logging.DEBUG)
    result = plan(SAMPLE, fixture=FIXTURES / "fresh.yaml")
    recorded = pyinfra_records(result)
    printed = capsys.readouterr()
    recorded += [printed.out, printed.err, caplog.text]

    secret_ops = [op for op in result.operations if op.name == "image.encrypted"]
    assert len(secret_ops) == 1 and "*MASKED*" in secret_ops[0].args
    assert "image.encrypted" in printed.err  # the dump really covers this operation
    leaks = [text for text in recorded if PASSPHRASE in text]
    assert leaks == []

    # while the command objects do carry it, on standard input only
    stdin = [command.connector_arguments.get("_stdin") for commands in result.pyinfra_commands() for command in commands]
    assert stdin.count(PASSPHRASE) == 2


CLI_DEPLOY = """\
import os
from pyinfra.api import HiddenValue
from torjail.freebsd import geli

passphrase = HiddenValue(os.environ["SAMPLE_GELI_PASSPHRASE"])
geli.provider("md10", passphrase, _ignore_errors=True)
geli.provider("md10", passphrase, detach_on_last_close=True, _ignore_errors=True)
"""

GELI_SHIM = """\
#!/bin/sh
# stands in for FreeBSD's geli: `list` answers as without geom_eli; each attach records a
# digest of what came on standard input, then fails like a wrong key would
if [ "$1" = list ]; then echo "geli: Command 'list' not available; try 'load' first." >&2; exit 1; fi
sha256sum | cut -d' ' -f1 >> "$GELI_STDIN_DIGESTS"
echo "geli: Wrong key for md10." >&2
exit 1
"""


def test_passphrase_absent_from_pyinfra_cli_output_at_full_verbosity(tmp_path):
    """The real pyinfra CLI against @local: --debug-operations, --dry --diff, and a run at -vvv
    --debug whose `geli` is a shim. The passphrase reaches geli's standard input and no output."""
    (tmp_path / "deploy.py").write_text(CLI_DEPLOY)
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "geli").write_text(GELI_SHIM)
    (shims / "geli").chmod(0o755)
    digests = tmp_path / "digests"
    env = {
        **os.environ,
        "SAMPLE_GELI_PASSPHRASE": PASSPHRASE,
        "GELI_STDIN_DIGESTS": str(digests),
        "PATH": f"{shims}:{VENV_BIN}:{os.environ['PATH']}",
    }

    outputs = []
    for extra in (["--debug-operations"], ["--dry", "--diff"], ["-y", "--debug"]):
        run = subprocess.run(
            [str(VENV_BIN / "pyinfra"), "-vvv", *extra, "@local", "deploy.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        outputs.append(run.stdout + run.stderr)
    everything = "\n".join(outputs)

    assert "geli attach -j - md10" in everything and "geli attach -d -j - md10" in everything
    assert "Wrong key for md10" in everything, "the run really executed the shim"
    assert PASSPHRASE not in everything
    expected = hashlib.sha256(f"{PASSPHRASE}\n".encode()).hexdigest()
    assert digests.read_text().split() == [expected, expected]
