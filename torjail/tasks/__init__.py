"""One module per concern, in deploy order: base, swap, vault, jail, tor, firewall.

Each task reads only the settings object (and facts of the server) and calls operations; none reads host.data.
"""
