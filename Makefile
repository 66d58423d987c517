# The two commands of the README (make demo, make test) and the helpers they use.
# Both install what they need: Debian packages (as root) and a pinned Python environment in .venv.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := tor openssh-server openssh-client nftables iproute2 debootstrap e2fsprogs util-linux xz-utils procps gcc libc6-dev
APT_COMMANDS := tor sshd ssh nft ip debootstrap mkfs.ext4 losetup unshare nsenter xz ps gcc

.PHONY: demo test test-fast bench verify deps venv clean

deps:
	@missing=""; for c in $(APT_COMMANDS); do command -v $$c >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The suite as a few pytest processes side by side (tests/run_groups.py), each printing its slowest tests.
test: deps venv
	$(PY) tests/run_groups.py

test-fast: venv
	$(PY) -m pytest -q -ra tests -m "not lab"

demo: deps venv
	$(PY) -m lab.demo

# Figures of the deploy on lab hosts (wall times, remote commands, TCP_NODELAY before/after): bench/run.py
bench: deps venv
	$(PY) bench/run.py

# Check a server against its settings (tests/host): make verify HOST=relay1.example.org
# SSH_CONFIG is included under StrictHostKeyChecking yes, so an unknown or changed host key stops the run, and
# behind one shared connection (ControlMaster): the checks run many commands, and one new connection each would
# land this machine in the server's <bruteforce> table.
HOST =
SSH_CONFIG ?= $(HOME)/.ssh/config
INVENTORY ?= inventory.py
VERIFY_ARGS ?=
verify: venv
	@test -n "$(HOST)" || { echo "usage: make verify HOST=relay1.example.org [SSH_CONFIG=FILE] [INVENTORY=FILE] [VERIFY_ARGS='--outside']" >&2; exit 2; }
	@config=$$(mktemp) && trap 'rm -f "$$config"' EXIT && \
	printf 'StrictHostKeyChecking yes\nControlMaster auto\nControlPath /tmp/torjail-verify-%%C\nControlPersist 60\nInclude %s\n' "$(abspath $(SSH_CONFIG))" >"$$config" && \
	$(PY) -m pytest -q -ra tests/host --hosts="ssh://$(HOST)" --ssh-config="$$config" --inventory="$(INVENTORY)" $(VERIFY_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
