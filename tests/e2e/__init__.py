"""End-to-end tests of torjail on lab hosts, a package so that their module names (test_family, test_status...)
stay apart from the unit tests' modules of the same names."""
