"""The FreeBSD userland the lab host presents: emulated commands and the kernel state they share."""
