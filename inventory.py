# An example fleet of two relays. Copy it, put your servers in, and run
#   python -m torjail check inventory.py
#   pyinfra inventory.py deploy.py --dry --diff
# Defaults for every setting are in group_data/all.py; what differs per relay goes here.
# AGE_RECIPIENT stands for your own age public key (`age-keygen -y ~/.config/torjail/age-identity.txt`).

AGE_RECIPIENT = "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"

relays = [
    ("relay1.example.org", {
        "relay_nickname": "ExampleRelay1",
        "relay_contact": "Example Operator <tor-admin AT example DOT org>",
        "public_ipv4": "203.0.113.10",
        "age_recipient": AGE_RECIPIENT,
        "family": "example",
        "public_ipv6": "2001:db8:10::10",
        "accounting_max": "1000 GBytes",
        "bandwidth_rate": "5 MBytes",
        "bandwidth_burst": "10 MBytes",
        "admin_networks": ["198.51.100.0/24"],
    }),
    ("relay2.example.org", {
        "relay_nickname": "ExampleRelay2",
        "relay_contact": "Example Operator <tor-admin AT example DOT org>",
        "public_ipv4": "203.0.113.20",
        "age_recipient": AGE_RECIPIENT,
        "family": "example",
        "ext_if": "igb0",
        "exit_relay": True,
        "exit_notice": True,
        "image_size": "16G",
        "admin_networks": ["198.51.100.0/24", "2001:db8:ffff::/48"],
    }),
]
