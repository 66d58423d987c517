"""The lab host: a local stand-in for a FreeBSD server, reachable over real SSH (tests and demo only).

The lab never imports the product's code: it stands in for FreeBSD, and FreeBSD knows nothing of torjail.
"""
