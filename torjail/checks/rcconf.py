"""Check an rc.conf fragment the way rc(8) will read it: as a shell file of variable assignments.

rc.conf is sourced by every rc script at boot; a stray quote or command in it breaks the whole boot of the jail.
It must hold nothing but `name="value"` assignments and comments (checked first: a file that could run a
command is never sourced), parse (`sh -n`) and source cleanly in an empty environment without printing anything.
"""

import re
import subprocess
import tempfile

ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*="[^"`$\\]*"$')


def check_rc_conf(text):
    """Return the problems of an rc.conf text (empty when it is clean)."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not ASSIGNMENT.match(stripped):
            problems.append(f'line {number}: expected name="value" (no commands, expansions or escapes): {stripped!r}')
    with tempfile.NamedTemporaryFile("w", suffix=".rc.conf") as handle:
        handle.write(text)
        handle.flush()
        syntax = subprocess.run(["sh", "-n", handle.name], capture_output=True, text=True, timeout=30)
        if syntax.returncode != 0:
            return problems + [f"sh -n: {syntax.stderr.strip().replace(handle.name, 'rc.conf')}"]
        if problems:
            return problems  # never source a file that may run commands
        sourced = subprocess.run(
            ["env", "-i", "sh", "-c", '. "$1"', "sh", handle.name], capture_output=True, text=True, timeout=30,
        )
        if sourced.returncode != 0 or sourced.stdout or sourced.stderr:
            output = (sourced.stdout + sourced.stderr).strip().replace(handle.name, "rc.conf")
            problems.append(f"sourcing it fails or prints something: {output or sourced.returncode}")
    return problems
