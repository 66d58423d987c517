"""swapoff(8): see lab/freebsd/swap.py (swapon, swapoff and swapctl are one program on FreeBSD)."""

from lab.freebsd import swap


def main(argv):
    return swap.main("swapoff", argv)
