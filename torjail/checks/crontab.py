"""Check a system crontab (crontab(5), the /etc/cron.d form with a user field) before it is placed.

cron(8) skips a line it cannot read and logs the error on the server only: a broken line would quietly stop
the job that lets addresses out of <bruteforce>. Each line must be an environment setting or five time fields,
a user and a command, the fields in crontab(5)'s syntax.
"""

import re

FIELD = re.compile(r"[0-9*,/-]+")
RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
ENVIRONMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*=.*")
USER = re.compile(r"[a-z_][a-z0-9_-]*")
# crontab(5)'s special strings standing for the five time fields
SPECIAL = {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
           "@every_minute", "@every_second"}


def _field_problem(field, low, high):
    if not FIELD.fullmatch(field):
        return f"{field!r} is not a crontab time field"
    for part in field.split(","):
        base, _, step = part.partition("/")
        if "/" in part and not step.isdigit():
            return f"{part!r} has a step that is not a number"
        if base == "*":
            continue
        for number in base.split("-"):
            if not number.isdigit() or not low <= int(number) <= high:
                return f"{part!r} is outside {low}-{high}"
    return None


def check_crontab(text):
    """Problems of a system crontab, each naming its line; empty when cron reads every line."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or ENVIRONMENT.fullmatch(stripped):
            continue
        if stripped.split()[0] in SPECIAL:
            special = stripped.split(None, 2)
            if len(special) < 3 or not USER.fullmatch(special[1]):
                problems.append(f"line {number}: expected {special[0]}, a user and a command")
            continue
        fields = stripped.split(None, 6)
        if len(fields) < 7:
            problems.append(f"line {number}: expected five time fields, a user and a command")
            continue
        problem = next(filter(None, (_field_problem(field, *limits) for field, limits in zip(fields, RANGES))), None)
        if problem:
            problems.append(f"line {number}: {problem}")
        elif not USER.fullmatch(fields[5]):
            problems.append(f"line {number}: {fields[5]!r} is not a user name")
    return problems
