"""freebsd"""
