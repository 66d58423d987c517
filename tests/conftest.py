"""Fixtures for lab tests (marked `lab`: tests/lab/emulator and tests/e2e, both under this directory): one lab host
shared by the whole session, and commands run on it over real SSH.

- `lab_host`: a running lab host (session scope), an object with name, index, address, ssh_config,
  known_hosts, key and run(command, input=None, timeout=120) -> (status, stdout, stderr).
- `lab_run`: lab_host.run itself, for tests that only run commands.
Lab tests need root, network namespaces and debootstrap; without them they are skipped with the reason.
The session's lab host (TORJAIL_LAB_TEST_HOST, default labtest, index TORJAIL_LAB_TEST_INDEX, default 9) is
destroyed at the end of the session (TORJAIL_LAB_KEEP=1 keeps it).
"""

import os
import shutil

import pytest

from lab import host, paths

SESSION_HOST = os.environ.get("TORJAIL_LAB_TEST_HOST", "labtest")
SESSION_INDEX = int(os.environ.get("TORJAIL_LAB_TEST_INDEX", "9"))


def lab_unavailable():
    """Why lab tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, mounts)"
    for tool in ("ip", "unshare", "nsenter", "ssh", "ssh-keygen", "debootstrap", "xz", "gcc"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            return f"lab tests need {tool} (make deps installs it)"
    if not os.path.exists("/proc/self/ns/net"):
        return "lab tests need network namespaces"
    return None


class LabHost:
    def __init__(self, name, index):
        self.name = name
        self.index = index
        self.address = paths.address(index)
        self.ssh_config = paths.ssh_config_path(name)
        self.known_hosts = paths.known_hosts_path(name)
        self.key = paths.key_path()

    def run(self, command, input=None, timeout=120):
        return host.ssh(self.name, command, input=input, timeout=timeout)


def pytest_collection_modifyitems(config, items):
    reason = lab_unavailable()
    if reason is None:
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab_host():
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    index = host.up(SESSION_HOST, SESSION_INDEX, log=lambda text: None)
    yield LabHost(SESSION_HOST, index)
    if not os.environ.get("TORJAIL_LAB_KEEP"):
        host.destroy(SESSION_HOST, log=lambda text: None)


@pytest.fixture(scope="session")
def lab_run(lab_host):
    return lab_host.run
