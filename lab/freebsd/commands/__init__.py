"""One module per emulated FreeBSD command; each exposes main(argv) -> exit status."""
