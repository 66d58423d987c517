"""The traffic budget: the planner's arithmetic, its worst case over every month, refusals, and `torjail budget`.

The worst case is checked here independently of torjail.budget's own: a second-by-second simulation of a relay
that sends as fast as its token bucket and its accounting let it, through real calendar months.
"""

import calendar
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from torjail.budget import layouts, make_plan, parse_traffic, tor_amount
from torjail.render import render_file
from torjail.settings import SettingsError, build_settings, parse_tor_amount

ROOT = Path(__file__).resolve().parents[2]
BASE = {"identity": "on-relay", "relay_nickname": "Budget", "relay_contact": "ops@example.org",
        "public_ipv4": "198.51.100.7"}
SEED = {"traffic_quota": "2 TB", "traffic_reserve": "3 GB", "accounting_start": "day 12:00"}


def test_units_are_named_for_what_they_are():
    assert parse_traffic("2 TB") == 2 * 10**12
    assert parse_traffic("2 TiB") == parse_traffic("2 TBytes") == 2 * 2**40
    assert parse_traffic("1.5 GB") == 1_500_000_000
    assert parse_traffic("3 kB") == parse_traffic("3 KB") == 3000
    assert tor_amount(64408780800) == "61425 MBytes" and tor_amount(1000) == "1000 bytes"


def test_seed_relay_two_terabytes_both_directions_daily_from_noon():
    """2 TB a month counted both ways, 3 GB reserved, a day from 12:00."""
    plan = build_settings("relay1", {**BASE, **SEED}).plan
    available = 2 * 10**12 - 3 * 10**9
    rate = available // (2 * (31 * 86400 + 1)) // 1024 * 1024  # 372 797 bytes/s -> 364 KBytes
    assert plan.rate == plan.burst == rate == 364 * 1024
    assert plan.accounting_rule == "sum" and plan.accounting_start == "day 12:00"
    assert plan.accounting_max == 2 * rate * 86400 == 61425 * 2**20  # both directions, a whole day at full rate
    assert plan.awake_share == 1.0
    assert plan.worst_month <= available
    # 30 whole days and two half days at the ends of a 31-day month, at most what the rate carries in it
    assert plan.worst_month == 2 * (rate * 31 * 86400 + rate)
    lines = render_file(build_settings("relay1", {**BASE, **SEED}), "torrc.j2").splitlines()
    assert [line for line in lines if line.startswith(("Accounting", "RelayBandwidth"))] == [
        "AccountingMax 61425 MBytes", "AccountingStart day 12:00", "AccountingRule sum",
        "RelayBandwidthRate 364 KBytes", "RelayBandwidthBurst 364 KBytes"]


def test_one_direction_quota_plans_accounting_rule_max():
    plan = build_settings("relay1", {**BASE, "traffic_quota": "1 TiB", "traffic_quota_both_directions": False}).plan
    assert plan.accounting_rule == "max"
    assert plan.rate == 2**40 // (31 * 86400 + 1) // 1024 * 1024
    assert plan.accounting_max == plan.rate * 31 * 86400 and plan.worst_month <= 2**40


def simulate_month(plan, both_directions, year, month):
    """Bytes a relay at full speed moves in a real calendar month (as the provider counts them), hour by hour:
    each hour it moves rate * 3600 each way (the bucket starts full: one burst more), unless the period's
    allowance, counted by the AccountingRule, is used up."""
    kind, *rest = plan.accounting_start.split()
    hour, minute = map(int, rest[-1].split(":"))
    start, end = datetime(year, month, 1), datetime(year, month, calendar.monthrange(year, month)[1]) + \
        timedelta(days=1)

    def period_of(moment):
        anchor = moment.replace(hour=hour, minute=minute, second=0)
        if kind == "day":
            return anchor if anchor <= moment else anchor - timedelta(days=1)
        if kind == "week":
            anchor -= timedelta(days=(anchor.weekday() - (int(rest[0]) - 1)) % 7)
            return anchor if anchor <= moment else anchor - timedelta(days=7)
        anchor = anchor.replace(day=int(rest[0]))
        if anchor > moment:
            anchor = (anchor.replace(day=1) - timedelta(days=1)).replace(day=int(rest[0]))
        return anchor

    step = timedelta(minutes=30)
    used, total, moment, bucket = {}, 0, start, plan.burst
    while moment < end:
        each_way = plan.rate * step.total_seconds() + bucket
        bucket = 0
        period = period_of(moment)
        counted = 2 * each_way if plan.accounting_rule == "sum" else each_way
        left = plan.accounting_max - used.get(period, 0)
        if counted > left:
            each_way = left / 2 if plan.accounting_rule == "sum" else left
            counted = left
        used[period] = used.get(period, 0) + counted
        total += 2 * each_way if both_directions else each_way
        moment += step
    return total


@pytest.mark.parametrize("start", ["day 12:00", "day 00:00", "day 23:30", "week 3 12:00", "week 1 00:00",
                                   "month 1 00:00", "month 15 06:00", "month 28 23:59"])
@pytest.mark.parametrize("quota, both", [("2 TB", True), ("3 TiB", False), ("500 GB", True)])
def test_rounding_never_overruns_any_month(start, quota, both):
    """Every month of a leap and a common year, however the periods fall, stays within quota less reserve."""
    settings = build_settings("relay1", {**BASE, "traffic_quota": quota, "traffic_reserve": "3 GB",
                                         "traffic_quota_both_directions": both, "accounting_start": start})
    plan = settings.plan
    assert plan.worst_month <= plan.available
    for year, month in [(2024, m) for m in range(1, 13)] + [(2025, 2), (2025, 3)]:
        assert simulate_month(plan, both, year, month) <= plan.worst_month, (year, month)


def test_layouts_cover_split_periods():
    assert layouts("day 12:00", 28) == [[43200] + [86400] * 27 + [43200]]
    assert layouts("month 15 06:00", 30) == [[14 * 86400 + 21600, 30 * 86400 - 14 * 86400 - 21600]]
    assert {len(pieces) for pieces in layouts("week 1 00:00", 31)} == {5, 6}


def test_explicit_rate_shrinks_the_allowance_to_fit():
    """An explicit, faster rate is kept; the planned allowance shrinks so the month still fits, and the relay
    sleeps part of each day."""
    plan = build_settings("relay1", {**BASE, **SEED, "bandwidth_rate": "2 MBytes"}).plan
    assert plan.rate == 2 * 2**20 and plan.worst_month <= plan.available
    assert plan.awake_share < 0.2
    # the two half days at the month's ends can each use a whole allowance at this rate: 32 allowances fit
    assert 32 * plan.accounting_max <= plan.available < 32 * (plan.accounting_max + 1024)


def test_explicit_accounting_max_within_quota_is_kept_and_spread():
    plan = build_settings("relay1", {**BASE, **SEED, "accounting_max": "50 GBytes"}).plan
    assert plan.accounting_max == 50 * 2**30
    assert plan.rate == 50 * 2**30 // (2 * 86400) // 1024 * 1024 and plan.awake_share == 1.0


BAD = [
    ({"traffic_quota": "2TB"}, "traffic_quota", "like '2 TB'"),
    ({"traffic_quota": "2 tb"}, "traffic_quota", "like '2 TB'"),
    ({"traffic_quota": "2 TB\n"}, "traffic_quota", "like '2 TB'"),
    ({"traffic_quota": "-2 TB"}, "traffic_quota", "like '2 TB'"),
    ({"traffic_quota": "٢ TB"}, "traffic_quota", "like '2 TB'"),
    ({"traffic_quota": "0 TB"}, "traffic_quota", "above zero"),
    ({"traffic_quota": "1.5 B"}, "traffic_quota", "whole number of bytes"),
    ({"traffic_quota": 2000}, "traffic_quota", "a string"),
    ({"traffic_quota": "2 TB", "traffic_reserve": "2 TB"}, "traffic_reserve", "nothing is left"),
    ({"traffic_reserve": "3 GB"}, "traffic_reserve", "traffic_quota to be set"),
    ({"traffic_quota_both_directions": False}, "traffic_quota_both_directions", "unless traffic_quota is set"),
    ({"traffic_quota": "300 GB"}, "traffic_quota", "300.0000 GB less 0 B reserved leaves 300.0000 GB a month, "
                                                   "56003 bytes/s each way over 31 days with both directions "
                                                   "counted; 75 KBytes/s needs 411.4023 GB"),
    ({**SEED, "accounting_max": "100 GBytes"}, "accounting_max",
     "AccountingMax 100 GBytes (sum) with RelayBandwidthRate 606 KBytes lets a month carry 3.3241 TB, more than "
     "traffic_quota 2.0000 TB less traffic_reserve 3.0000 GB = 1.9970 TB"),
    ({**SEED, "accounting_rule": "in", "bandwidth_rate": "2 GBytes"}, "bandwidth_rate",
     "expected a rate whose month stays under 1.9970 TB: at 2 GBytes with AccountingRule in no AccountingMax does"),
    ({**SEED, "bandwidth_rate": "1 MBytes", "bandwidth_burst": "1 MBytes", "accounting_max": "80 GBytes"},
     "accounting_max", "lets a month carry"),
]


@pytest.mark.parametrize("values, setting, message", BAD)
def test_bad_quotas_are_refused_naming_host_and_setting(values, setting, message):
    with pytest.raises(SettingsError) as error:
        build_settings("relay7.example", {**BASE, **values})
    assert any(problem.startswith(f"relay7.example: setting '{setting}': ") and message in problem
               for problem in error.value.problems), error.value.problems


def test_without_a_quota_accounting_passes_through():
    settings = build_settings("lab1", {**BASE, "accounting_max": "10 GBytes", "bandwidth_rate": "2 MBytes"})
    assert settings.plan is None
    assert settings.torrc_traffic == {"AccountingMax": "10 GBytes", "AccountingStart": "month 1 00:00",
                                      "AccountingRule": "sum", "RelayBandwidthRate": "2 MBytes",
                                      "RelayBandwidthBurst": None}


def test_make_plan_refuses_a_burst_under_the_planned_rate():
    with pytest.raises(ValueError, match="at least the rate 364 KBytes"):
        make_plan(2 * 10**12, 3 * 10**9, "day 12:00", True, burst=parse_tor_amount("100 KBytes"))


def test_budget_command_prints_the_plan(tmp_path):
    inventory = tmp_path / "inventory.py"
    inventory.write_text(f"relays = [('relay1', {{**{BASE!r}, **{SEED!r}}}), ('relay2', {BASE!r})]\n")
    result = subprocess.run([sys.executable, "-m", "torjail", "budget", str(inventory)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "relay1: quota 2.0000 TB a month (2000000000000 bytes, both directions counted)",
        "relay1: reserve 3.0000 GB a month (3000000000 bytes) for other services",
        "relay1: allowance 61425 MBytes a day (64408780800 bytes, AccountingRule sum, AccountingStart day 12:00)",
        "relay1: rate 364 KBytes/s each way, burst 364 KBytes (2.98 Mbit/s)",
        "relay1: awake 100.0% of every day at full rate",
        "relay1: worst-case month 1.9966 TB (1996672950272 bytes) of 1.9970 TB (1997000000000 bytes) available",
        "relay2: no traffic_quota: no accounting, RelayBandwidthRate unlimited",
    ]


def test_budget_command_refuses_bad_settings(tmp_path):
    inventory = tmp_path / "inventory.py"
    inventory.write_text(f"relays = [('relay1', {{**{BASE!r}, 'traffic_quota': '10 GB'}})]\n")
    result = subprocess.run([sys.executable, "-m", "torjail", "budget", str(inventory)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "relay1: setting 'traffic_quota': expected a quota that carries" in \
        result.stderr


def test_budget_command_shows_a_hosts_quota_split_among_its_relays(tmp_path):
    """Each listed relay plans for its even share of the host's quota and reserve; together they fit the host's."""
    host = {**{key: value for key, value in BASE.items() if key != "relay_nickname"}, "traffic_quota": "4 TB",
            "traffic_reserve": "10 GB", "family": "fleet",
            "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad", "jails": [
                {"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "A"},
                {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11, "relay_nickname": "B",
                 "or_port": 9002, "dir_port": 0},
                {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12,
                 "onion_ports": [80]}]}
    inventory = tmp_path / "inventory.py"
    inventory.write_text(f"relays = [('multi', {host!r})]\n")
    result = subprocess.run([sys.executable, "-m", "torjail", "budget", str(inventory)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 13
    for jail in ("tor", "tor2"):
        assert f"multi/{jail}: quota 2.0000 TB a month (2000000000000 bytes, both directions counted)" in lines
        assert f"multi/{jail}: reserve 5.0000 GB a month (5000000000 bytes) for other services" in lines
        assert f"multi/{jail}: worst-case month 1.9911 TB (1991186841600 bytes) of 1.9950 TB (1995000000000 " \
               "bytes) available" in lines
    assert lines[-1] == ("multi: quota 4.0000 TB a month split evenly among 2 relays: together a worst-case month "
                         "of 3.9823 TB (3982373683200 bytes) of 3.9900 TB (3990000000000 bytes) available")
