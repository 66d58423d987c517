"""Converge a FreeBSD server into a Tor relay host: `pyinfra inventory.py deploy.py` (add `--dry --diff` to preview).

Order matters: the base (modules, sysctls), encrypted swap, the encrypted image (the vault), the jail populated in
it, tor inside the jail, then the firewall. Every step reads the validated settings of the host, nothing else.
"""

from torjail.tasks import base, firewall, jail, preflight, swap, tor, vault

settings, ext_if = preflight.apply()
base.apply(settings)
swap.apply(settings)
vault.apply(settings)
jail.apply(settings, ext_if)
tor.apply(settings)
firewall.apply(settings, ext_if)
