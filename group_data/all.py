# Every torjail setting and its default, in the order the README documents them.
# Override per host in inventory.py (or per group in group_data/<group>.py). torjail refuses to touch a server
# whose settings do not validate: `python -m torjail check inventory.py` shows what it would refuse.
# Secrets never go here: the GELI passphrase comes from an environment variable, a command or a prompt.

# --- Relay identity -----------------------------------------------------------------------------------------
# relay_nickname = "MyRelay"       # required per host (with jails: per relay instead): 1-19 letters or digits
# relay_contact = "admin@example.org"  # required per host: ContactInfo, one printable line, no '#', no trailing backslash
# public_ipv4 = "203.0.113.10"     # required per host: the address the relay advertises (pf redirects it to the jail)
public_ipv6 = None                 # the relay's own global IPv6 address (held by the jail itself), or None
or_port = 9001                     # ORPort advertised on the public addresses
dir_port = 9030                    # DirPort (0: none). Tor does not advertise it while accounting is on.

# --- Identity keys and the secrets directory ----------------------------------------------------------------
identity = "offline-master"        # or "on-relay": tor makes every key inside the encrypted image
signing_key_lifetime_days = 30     # offline-master: SigningKeyLifetime of the signing key and certificate (2-365)
secrets_dir = "~/.local/share/torjail"  # on this machine, outside the repository: age-encrypted master keys
age_recipient = None               # offline-master: the age public key (age1...) the secrets are encrypted to
family = None                      # a name: every relay of the inventory with that name shares one family key
                                   # (FamilyId) and lists the others in MyFamily; None: not in a family

# --- Exit or not --------------------------------------------------------------------------------------------
exit_relay = False                 # a middle/guard relay unless set True
exit_policy = []                   # exits only: ExitPolicy lines ("accept *:443"), ending in "reject *:*" (see README);
                                   # [] means ReducedExitPolicy 1
exit_notice = False                # exits only: serve the exit notice page on the DirPort
exit_resolvers = []                # exits only: forwarders of the jail's local-unbound (IP addresses); [] means it
                                   # resolves recursively itself; the big public resolvers are refused

# --- Traffic: the provider's quota, accounting and bandwidth ------------------------------------------------
traffic_quota = None               # the provider's monthly quota, e.g. "2 TB" (decimal as billed) or "2 TiB"/"2 TBytes"
                                   # (binary): plans accounting and rate to fit it (see README "Traffic budget")
traffic_quota_both_directions = True  # the provider counts sent + received (False: one direction)
traffic_reserve = None             # traffic a month kept for other services on the server, e.g. "3 GB"
accounting_max = None              # e.g. "500 GBytes": hibernate when the period's traffic reaches it; None: off,
                                   # or planned from traffic_quota
accounting_start = "month 1 00:00" # when the accounting period starts: day HH:MM, week D HH:MM, month D HH:MM
accounting_rule = None             # sum (sent+received, as providers bill), max, in or out; None: planned
                                   # (sum, or max for a one-direction quota), sum without a quota
bandwidth_rate = None              # RelayBandwidthRate, e.g. "2 MBytes" (75 KBytes to 2 GBytes); None: no cap
bandwidth_burst = None             # RelayBandwidthBurst, at least the rate

# --- Jail ---------------------------------------------------------------------------------------------------
jail_name = "tor"                  # jail name, also /etc/jail.conf.d/<name>.conf: letters, digits, _ and -
jail_interface = "lo1"             # cloned loopback carrying the jail address
jail_ip = "10.0.0.1"               # private jail address; pf redirects the relay ports to it
jail_root = "/var/jails/tor"       # where the encrypted filesystem is mounted as the jail's root
jail_release = "14.3-RELEASE"      # FreeBSD release of the jail's userland (not newer than the host)
jail_release_sha256 = None         # required by deploy.py: sha256 of that release's base.txz as its MANIFEST lists
                                   # it, from a source you checked (not the mirror the deploy downloads from)
jail_arch = "amd64"                # amd64 or arm64
release_mirror = "https://download.freebsd.org/releases"  # base.txz comes from <mirror>/<arch>/<release>/
pkg_branch = "quarterly"           # package branch for host and jail: quarterly or latest
jails = None                       # None: one relay jail from these settings; or a list of the host's jails,
                                   # each a dict with its kind ("relay" or "onion-service"), see README "Several jails"

# --- Encrypted image (the vault) ----------------------------------------------------------------------------
image_path = "/var/jails/tor.img"  # the image file on the host's disk; never re-initialised once it exists
image_size = "8G"                  # 2G to 2T
md_unit = 10                       # md(4) unit the image is attached to (/dev/md10, /dev/md10.eli); not a swap unit
geli_cipher = "AES-XTS"            # AES-XTS (recommended), AES-CBC or Camellia-CBC
geli_key_length = 256              # 128 or 256
geli_sector_size = 4096            # 512 to 8192, a power of two
geli_passphrase_env = "TORJAIL_GELI_PASSPHRASE"  # the NAME of the environment variable holding the passphrase
geli_passphrase_command = None     # or a command printing it, e.g. ["pass", "show", "torjail/relay1"]

# --- Swap ---------------------------------------------------------------------------------------------------
swap_devices = "detect"            # "detect" (swap entries of /etc/fstab) or a list like ["/dev/ada0p3"]
swap_file_size = None              # e.g. "2G": add an encrypted swap file when the server has no swap

# --- Firewall -----------------------------------------------------------------------------------------------
ext_if = "detect"                  # "detect" (interface of the default route) or a name like vtnet0
sshd_port = 22                      # sshd port the firewall lets in
admin_networks = ["0.0.0.0/0", "::/0"]  # who may reach sshd; narrow this to your own networks (prefix lengths, no host bits)
sshd_max_connections = 10           # simultaneous sshd connections per source before it is blocked
sshd_connection_rate = "15/60"      # new connections/seconds per source before it lands in <bruteforce>
sshd_block_seconds = 3600          # how long an address stays in <bruteforce> (expired from cron every minute)
pf_rollback_seconds = 90           # a new ruleset rolls back by itself unless SSH still works within this time
host_logs = ["pflog", "jail_console"]  # what the host's clear disk logs of the relay: pf's blocked packets
                                   # (/var/log/pflog) and the jail's console (its rc's output); [] keeps neither
metrics_port = None                # tor's MetricsPort for Prometheus, e.g. 9035; None: off
metrics_networks = []              # IPv4 networks (narrower than the world) allowed to reach metrics_port
