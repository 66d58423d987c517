"""rcorder(8): order rc.d scripts by their PROVIDE / REQUIRE / BEFORE lines, keeping KEYWORD filters.

Ties keep the order of the file list, and a dependency cycle is reported and broken (as rcorder does)
rather than losing a script.
"""

import re

HEADER = re.compile(r"^#\s*(PROVIDE|REQUIRE|BEFORE|KEYWORD):(.*)$")


def read_header(path):
    header = {"PROVIDE": [], "REQUIRE": [], "BEFORE": [], "KEYWORD": []}
    try:
        with open(path, errors="replace") as handle:
            for line in handle:
                match = HEADER.match(line.strip())
                if match:
                    header[match.group(1)] += match.group(2).split()
    except OSError:
        pass
    return header


def order(paths, keep=(), skip=(), warn=None):
    """The scripts of `paths` in boot order, without those lacking a `keep` keyword or having a `skip` one."""
    headers = {path: read_header(path) for path in paths}
    selected = [path for path in paths
                if (not keep or set(keep) & set(headers[path]["KEYWORD"]))
                and not set(skip) & set(headers[path]["KEYWORD"])]
    providers = {}
    for path in paths:
        for name in headers[path]["PROVIDE"]:
            providers.setdefault(name, []).append(path)
    after = {path: set() for path in paths}  # path -> scripts that must come first
    for path in paths:
        for name in headers[path]["REQUIRE"]:
            after[path].update(providers.get(name, []))
        for name in headers[path]["BEFORE"]:
            for other in providers.get(name, []):
                after[other].add(path)
    result, done, visiting = [], set(), set()

    def visit(path):
        if path in done:
            return
        if path in visiting:
            if warn:
                warn(f"Circular dependency on file '{path}'.")
            return
        visiting.add(path)
        for first in sorted(after[path], key=paths.index):
            visit(first)
        visiting.discard(path)
        done.add(path)
        result.append(path)

    for path in paths:
        visit(path)
    chosen = set(selected)
    return [path for path in result if path in chosen]
