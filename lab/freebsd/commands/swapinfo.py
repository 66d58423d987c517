"""swapinfo(8): active swap devices of the lab host (lab/freebsd/swap.py)."""

from lab.freebsd import swap


def main(argv):
    return swap.swapinfo(argv)
