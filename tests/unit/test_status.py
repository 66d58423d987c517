"""The status rows, their advice and the chart, from tor's answers: what tor did not say is unknown, never zero,
and the chart plots exactly the numbers tor reported."""

import json

import pytest
from PIL import Image

from torjail import chart, status, torcontrol
from torjail.settings import settings_for_inventory, load_inventory

START, END = "2026-12-01 00:00:00", "2027-01-01 00:00:00"
ANSWERS = {"accounting/enabled": "1", "accounting/hibernating": "awake", "accounting/bytes": "3000 1000",
           "accounting/bytes-left": "6000 6000", "accounting/interval-start": START,
           "accounting/interval-end": END}


@pytest.fixture(scope="module")
def settings():
    return settings_for_inventory(load_inventory("inventory.py"))["relay1.example.org"]


def row(answers, now, settings, **changes):
    accounting = torcontrol.parse_accounting(answers)
    period = status.usage(accounting, settings.torrc_traffic["AccountingRule"])
    found = {"host": "relay1.example.org", "reachable": True, "error": None, "image": "unlocked", "jail": True,
             "tor": True, "version": "0.4.9.11", "accounting": accounting, "tor_error": None, "period": period,
             "exhausted_at": status.exhaustion(period, now), "cert_expires": now + 20 * 86400, "pf": True,
             "swap": "encrypted", "now": now, **changes}
    found["next"] = status.advice(found, settings)
    return found


def test_missing_or_malformed_answers_are_unknown_not_zero():
    accounting = torcontrol.parse_accounting({"accounting/enabled": "yes", "accounting/bytes": "12",
                                              "accounting/bytes-left": "a b", "accounting/hibernating": "dozing"})
    assert accounting == {"enabled": None, "hibernating": None, "bytes": None, "bytes_left": None,
                          "interval_start": None, "interval_end": None}
    assert status.usage(accounting, "sum") is None


@pytest.mark.parametrize("rule, used, left", [("sum", 4000, 6000), ("max", 3000, 6000), ("in", 3000, 6000),
                                              ("out", 1000, 6000)])
def test_usage_follows_the_accounting_rule(rule, used, left):
    period = status.usage(torcontrol.parse_accounting(ANSWERS), rule)
    assert (period["used"], period["left"], period["allowance"]) == (used, left, used + left)
    assert period["start"] == status.tor_time(START) and period["end"] == status.tor_time(END)


def test_exhaustion_extrapolates_the_average_rate_so_far():
    period = status.usage(torcontrol.parse_accounting(ANSWERS), "sum")
    now = period["start"] + 1000
    assert status.exhaustion(period, now) == now + 6000 / (4000 / 1000)
    assert status.exhaustion({**period, "used": 0}, now) is None


def test_a_relay_that_runs_out_early_is_told_what_to_do(settings):
    now = status.tor_time(START) + 1000  # 4000 bytes in 1000 s: the rest goes in 1500 s
    found = row(ANSWERS, now, settings)
    assert found["next"] == ["the allowance runs out before the period ends at this rate: lower bandwidth_rate"]
    assert status.cells(found)[11] == status.when(now + 1500)


def test_a_locked_relay_shows_unknowns_and_unlock(settings):
    found = row({}, 1.8e9, settings, image="locked", jail=False, tor=False, version=None, cert_expires=None,
                pf=True)
    assert found["next"] == ["locked: run unlock.py"]
    cells = dict(zip(status.COLUMNS, status.cells(found)))
    assert (cells["read"], cells["written"], cells["left"], cells["version"]) == ("?", "?", "?", "?")
    assert cells["next"] == "locked: run unlock.py"


def test_an_expiring_certificate_and_clear_swap_ask_for_action(settings):
    now = status.tor_time(END) - 10
    found = row(ANSWERS, now, settings, cert_expires=now + 86400, swap="clear: /dev/ada0p3", pf=False)
    assert f"signing certificate expires {status.when(now + 86400)}: run renew_keys.py" in found["next"]
    assert "pf disabled: run deploy.py" in found["next"]
    assert "swap not encrypted: run deploy.py, then reboot" in found["next"]


def test_an_unreachable_relay_is_a_row_of_its_own():
    found = status.unreachable("relay2.example.org", "timed out")
    assert found["next"] == ["unreachable (timed out): check the server and its SSH access"]
    assert "relay2.example.org  no " in status.table([found])


def test_an_unreadable_answer_is_a_row_of_its_own_and_says_what_to_do():
    found = status.unreadable("relay3.example.org", "ValueError: unreadable jls line")
    assert found["reachable"] is True and found["image"] is None
    assert found["next"] == ["status unreadable (ValueError: unreadable jls line): run `pyinfra inventory.py "
                             "deploy.py --dry` on it to see why"]
    assert "relay3.example.org" in status.table([found])


def test_the_survey_turns_one_relays_unreadable_answer_into_its_row(monkeypatch, settings):
    """The other relays are still reported when one relay's answers cannot be read."""
    from pyinfra.api import Inventory

    from torjail import survey

    def collect(host, relay_settings):
        if host.name == "odd.example.org":
            raise ValueError("unreadable jls line")
        return status.unreachable(host.name, "stand-in for a good row")

    monkeypatch.setattr(status, "collect", collect)
    inventory = Inventory((["odd.example.org", "good.example.org"], {}), override_data={"_connector": "@local"})
    for host in inventory:
        monkeypatch.setattr(host, "connect", lambda *args, **kwargs: None)
        monkeypatch.setattr(host, "disconnect", lambda *args, **kwargs: None)
    rows = survey.survey(inventory, {name: settings.model_copy(update={"host_name": name})
                                     for name in ("odd.example.org", "good.example.org")})
    assert [row["host"] for row in rows] == ["odd.example.org", "good.example.org"]
    assert rows[0]["reachable"] is True and rows[0]["error"] == "ValueError: unreadable jls line"
    assert rows[1]["error"] == "stand-in for a good row"


def test_the_chart_plots_what_tor_reported(settings, tmp_path):
    now = status.tor_time(START) + 1000
    found = row(ANSWERS, now, settings)
    path = tmp_path / "relay1.png"
    assert chart.write(found, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        plotted = json.loads(image.text["torjail"])
    assert (plotted["used"], plotted["allowance"], plotted["exhausted_at"]) == (4000, 10000, now + 1500)
    assert plotted["even_use"] == [[status.tor_time(START), 0], [status.tor_time(END), 10000]]


def test_no_chart_without_a_period(settings, tmp_path):
    assert not chart.write(row({}, 1.8e9, settings), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_an_onion_service_jail_has_a_row_without_accounting_or_certificate(monkeypatch):
    """Its tor keeps no accounting: the row says so, asks for nothing about traffic or keys, and names the jail."""
    from torjail.freebsd.geli import GeliProviders
    from torjail.freebsd.jail import Jails
    from torjail.freebsd.pf import PfStatus
    from torjail.freebsd.service import ServiceRunning
    from torjail.freebsd.swap import SwapDevices
    from torjail.settings import build_settings

    jails = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "A"},
             {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12, "onion_ports": [80]}]
    [web] = build_settings("multi", {"identity": "offline-master", "relay_contact": "c", "public_ipv4": "198.51.100.7",
                                     "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad",
                                     "jails": jails}).onion_services
    answers = {GeliProviders: {"md12.eli": {}}, Jails: {"web": {}}, ServiceRunning: True,
               PfStatus: {"enabled": True}, SwapDevices: [{"device": "/dev/ada0p3.eli"}]}

    class Host:
        name = "multi"

        def get_fact(self, fact, **arguments):
            return answers[fact]

    monkeypatch.setattr(torcontrol, "ask_tor", lambda host, jail: {
        "version": "0.4.9.11", "accounting": torcontrol.parse_accounting({"accounting/enabled": "0"}), "error": None})
    found = status.collect(Host(), web, now=1_760_000_000)
    assert (found["host"], found["image"], found["jail"], found["tor"]) == ("multi/web", "unlocked", True, True)
    assert found["period"] is None and found["cert_expires"] is None and found["next"] == []
    assert "no accounting" in status.table([found])
