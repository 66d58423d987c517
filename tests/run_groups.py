"""`make test`: the whole suite as a few pytest processes side by side, each on its own test modules.

Lab tests spend most of their time waiting on lab hosts (a deploy over SSH, tor starting, pf's rollback window),
so running groups of modules at once shortens the suite more than the machine's core count suggests. Each group
is one pytest process with its own session lab host (labtest0 on index 9, labtest1 on 10, ...: SESSION_INDICES); the
end-to-end modules bring up lab hosts of their own, with names and indices no other module uses. A group's output is shown
whole when it ends, then a summary: each group's time and the slowest tests of the whole suite (SLOWEST, from each
group's junit XML). A group that runs longer than GROUP_TIMEOUT is stopped and counts as failed.
Arguments after `--` go to every pytest (`python tests/run_groups.py -- -x`).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUP_TIMEOUT = 75 * 60
# The longest modules, each in a group of its own or with a few others; every other module goes to the last group.
SWEEP = "tests/e2e/test_interruption.py::"
FRESH_SWEEP = SWEEP + "test_a_deploy_killed_at_every_step_on_a_fresh_host_converges_on_the_next_run"
BREAKING = "tests/e2e/test_host_checks_fail.py::"
# The longest tests, each in a group of its own or with a few others (module paths or pytest node ids), about 15
# minutes each on two CPUs; every other test module joins the last group.
GROUPS = [
    [FRESH_SWEEP + "[even steps]", "tests/e2e/test_status.py"],
    [FRESH_SWEEP + "[odd steps]", "tests/e2e/test_jail_trust.py"],
    [SWEEP + "test_a_deploy_killed_at_every_step_on_a_converged_host_loses_nothing[converged, first half]",
     "tests/e2e/test_tor_hibernation.py"],
    [SWEEP + "test_a_deploy_killed_at_every_step_on_a_converged_host_loses_nothing[converged, second half]"],
    ["tests/e2e/test_deploy.py", "tests/e2e/test_vault_safety.py", "tests/e2e/test_identity.py",
     "tests/e2e/test_family.py", "tests/e2e/test_restore.py", "tests/e2e/test_hostkey.py",
     "tests/e2e/test_rollback.py", "tests/e2e/test_traffic.py", "tests/e2e/test_deploy_lock.py",
     "tests/e2e/test_update.py", "tests/e2e/test_exit.py", "tests/e2e/test_lockout.py"],
    [BREAKING + "test_breaking_a_system_property_fails_exactly_its_checks",
     BREAKING + "test_the_system_host_is_green_again_after_its_last_case"],
    [BREAKING + "test_breaking_a_jail_tor_or_pf_property_fails_exactly_its_checks",
     BREAKING + "test_the_jail_host_is_green_again_after_its_last_case"],
    # every other module joins the last group
    ["tests/lab/emulator/test_pf_jail_host.py"],
]
# The session lab host's index of each group (14, 15 and 19 belong to the sweeps' own hosts, 17 to the host checks'
# breaking cases).
SESSION_INDICES = (9, 10, 11, 12, 13, 16, 18, 21)
SLOWEST = 15
PYTEST = [sys.executable, "-m", "pytest", "-q", "-ra", "--durations=15", "-p", "no:cacheprovider"]


def groups():
    """The module groups of this checkout: the named ones that exist, then every other test module."""
    named = [[entry for entry in group if (ROOT / entry.split("::")[0]).exists()] for group in GROUPS]
    taken = {entry.split("::")[0] for group in named for entry in group}
    rest = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
                  if str(path.relative_to(ROOT)) not in taken)
    return [group for group in named[:-1] if group] + [named[-1] + rest]


def start(number, modules, extra, log, junit):
    env = {**os.environ, "TORJAIL_LAB_TEST_HOST": f"labtest{number}",
           "TORJAIL_LAB_TEST_INDEX": str(SESSION_INDICES[number])}
    return subprocess.Popen([*PYTEST, f"--junitxml={junit}", *extra, *modules], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def slowest_tests(logs):
    """The SLOWEST tests of every group that wrote its junit XML: (seconds, test id), slowest first."""
    timed = []
    for path in Path(logs).glob("group*.xml"):
        try:
            cases = ET.parse(path).getroot().iter("testcase")
        except ET.ParseError:
            continue
        timed += [(float(case.get("time", 0)), f"{case.get('classname')}::{case.get('name')}") for case in cases]
    return sorted(timed, reverse=True)[:SLOWEST]


def main(argv):
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="torjail-tests-") as logs:
        running = {}
        for number, modules in enumerate(groups()):
            log = open(os.path.join(logs, f"group{number}.log"), "w+")
            junit = os.path.join(logs, f"group{number}.xml")
            running[number] = (start(number, modules, extra, log, junit), log, modules, time.monotonic())
        results = {}
        while running:
            time.sleep(1)
            for number, (process, log, modules, started) in list(running.items()):
                status = process.poll()
                if status is None and time.monotonic() - started > GROUP_TIMEOUT:
                    os.killpg(process.pid, signal.SIGKILL)
                    status = process.wait()
                    log.write(f"\nstopped after {GROUP_TIMEOUT} s\n")
                if status is None:
                    continue
                del running[number]
                results[number] = (status, time.monotonic() - started, len(modules))
                log.seek(0)
                print(f"===== group {number}: {' '.join(modules[:3])}{' ...' if len(modules) > 3 else ''}", flush=True)
                sys.stdout.write(log.read())
                log.close()
        slowest = slowest_tests(logs)
    print(f"===== the {SLOWEST} slowest tests")
    for seconds, test in slowest:
        print(f"{seconds:8.1f} s  {test}")
    print("===== groups")
    for number, (status, seconds, count) in sorted(results.items()):
        print(f"group {number}: {count} modules, {seconds:.0f} s, {'passed' if status == 0 else f'FAILED ({status})'}")
    print(f"suite: {time.monotonic() - began:.0f} s")
    return 0 if all(status == 0 for status, _seconds, _count in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
