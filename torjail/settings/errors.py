"""Bad settings as operators read them: one line per problem, "HOST: setting 'NAME': expected ...".

pydantic reports a problem as a location and a type code; an operator reading "invalid value" at 3 a.m. after a
seizure deserves better, so every problem is turned into the host, the setting and what is expected here.
"""

from pyinfra.api.exceptions import PyinfraError


class SettingsError(PyinfraError):
    """Bad settings for one or more hosts; each line names the host and the setting.

    A PyinfraError, so pyinfra's CLI stops before any change and prints the message without a traceback.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def format_problem(host_name, setting, message):
    """One problem as it is printed: the host, the setting, what is wrong."""
    return f"{host_name}: setting '{setting}': {message}"


def problems_from(host_name, error):
    """Every problem of a pydantic ValidationError, each as one line naming the host and the setting."""
    return [format_problem(host_name, setting, message) for setting, message in setting_problems(error)]


def setting_problems(error):
    """Every problem of a pydantic ValidationError as (setting, message); the checks across settings report theirs
    as a list of (setting, message) in one ValueError."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        ctx = item.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ValueError) and isinstance(inner.args[0], list):
            problems += inner.args[0]
            continue
        setting = loc[0] if loc else "?"
        if setting == "jails" and len(loc) > 1:
            setting = f"jails[{loc[1]}]"  # an entry that is not a dict
        if item["type"] == "missing":
            message = "is required and has no default; set it in inventory.py or group_data"
        elif item["type"] == "extra_forbidden":
            message = "is not a torjail setting (a typo?); see group_data/all.py for the list"
        elif isinstance(inner, ValueError):
            message = str(inner)
        else:
            message = f"expected {_expected_from(item)}, got {item.get('input')!r}"
        problems.append((setting, message))
    return problems


def _expected_from(item):
    """Turn pydantic's type errors into the words an operator expects ('expected True or False')."""
    kind = item["type"]
    if kind.startswith("bool"):
        return "True or False"
    if kind.startswith("int"):
        return "a whole number"
    if kind.startswith("string"):
        return "a string"
    if kind.startswith("list"):
        return "a list"
    if kind == "literal_error":
        return "one of " + item["ctx"]["expected"]
    return item["msg"].lower()
