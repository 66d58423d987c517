"""rcorder(8): print rc.d scripts in dependency order, from their PROVIDE/REQUIRE/BEFORE/KEYWORD comment lines.

`-k KEYWORD` keeps only files with that keyword, `-s KEYWORD` skips files with it (both may repeat).
A requirement nobody provides is reported on stderr and ignored; a cycle is reported and broken.
"""

import getopt
import re
import sys

HEADER = re.compile(r"^#\s*(PROVIDE|REQUIRE|BEFORE|KEYWORD):(.*)$")
USAGE = "usage: rcorder [-gp] [-k keep] [-s skip] file ..."


def read_header(path):
    fields = {"PROVIDE": [], "REQUIRE": [], "BEFORE": [], "KEYWORD": []}
    with open(path, errors="replace") as handle:
        for line in handle:
            match = HEADER.match(line)
            if match:
                fields[match.group(1)] += match.group(2).split()
    return fields


def order(files, keep=(), skip=(), warn=lambda text: None):
    headers = {}
    for path in files:
        try:
            headers[path] = read_header(path)
        except OSError as err:
            warn(f"could not open {path}: {err.strerror}")
    providers = {}
    for path, fields in headers.items():
        for name in fields["PROVIDE"]:
            providers.setdefault(name, []).append(path)
    needs = {path: [] for path in headers}
    for path, fields in headers.items():
        for name in fields["REQUIRE"]:
            if name not in providers:
                warn(f"requirement `{name}' in file `{path}' has no providers.")
            needs[path] += providers.get(name, [])
        for name in fields["BEFORE"]:
            for other in providers.get(name, []):
                needs[other].append(path)
    result, state = [], {}

    def visit(path):
        if state.get(path) == "done":
            return
        if state.get(path) == "visiting":
            warn(f"Circular dependency on file `{path}'.")
            return
        state[path] = "visiting"
        for other in needs[path]:
            visit(other)
        state[path] = "done"
        result.append(path)

    for path in headers:
        visit(path)
    selected = []
    for path in result:
        keywords = set(headers[path]["KEYWORD"])
        if keep and not keywords & set(keep):
            continue
        if keywords & set(skip):
            continue
        selected.append(path)
    return selected


def main(argv):
    try:
        opts, files = getopt.getopt(argv[1:], "gk:ps:")
    except getopt.GetoptError as err:
        print(f"rcorder: illegal option -- {err.opt}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    keep = [v for o, v in opts if o == "-k"]
    skip = [v for o, v in opts if o == "-s"]
    for path in order(files, keep, skip, lambda text: print(f"rcorder: {text}", file=sys.stderr)):
        print(path)
    return 0
