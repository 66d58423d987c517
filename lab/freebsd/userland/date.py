"""date(1) of FreeBSD: no -d (GNU's "display this date"); the time comes from -r SECONDS|FILE, or from
-j -f INPUT_FORMAT STRING; -u, -v adjustments, -I ISO 8601, -R RFC 2822, +FORMAT output (with %+)."""

import calendar
import datetime
import getopt
import os
import re
import sys
import time

USAGE = ("usage: date [-jnRu] [-I[date|hours|minutes|seconds|ns]] [-f input_fmt]\n"
         "            [ -z output_zone ] [-r filename|seconds] [-v[+|-]val[y|b|w|d|H|M|S]]\n"
         "            [[[[[[cc]yy]mm]dd]HH]MM[.SS] | new_date] [+output_fmt]")
DEFAULT_FORMAT = "%a %b %e %H:%M:%S %Z %Y"
ADJUST = re.compile(r"^([+-]?)(\d+)([ybmwdHMS]?)$")


def _fail(message):
    print(f"date: {message}", file=sys.stderr)
    return 1


def _adjust(moment, spec):
    match = ADJUST.match(spec)
    if not match:
        raise ValueError(spec)
    sign, number, unit = match.group(1), int(match.group(2)), match.group(3) or "S"
    delta = -number if sign == "-" else number
    if unit in "HMSdw":
        seconds = {"S": 1, "M": 60, "H": 3600, "d": 86400, "w": 7 * 86400}[unit]
        if sign:
            return moment + datetime.timedelta(seconds=delta * seconds)
        field = {"S": "second", "M": "minute", "H": "hour", "d": "day"}.get(unit)
        if field is None:  # an absolute weekday: move forward to it
            return moment + datetime.timedelta(days=(number - moment.isoweekday() % 7) % 7)
        return moment.replace(**{field: number})
    if unit in "mb":
        if not sign:
            return moment.replace(month=number)
        months = moment.year * 12 + moment.month - 1 + delta
        year, month = divmod(months, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)
    year = (moment.year + delta) if sign else (number + 2000 if number < 69 else number + 1900 if number < 100 else number)
    return moment.replace(year=year)


def main(argv):
    # -I takes an optional argument, attached to it: a bare -I means -Idate.
    fixed = ["-Idate" if arg == "-I" else arg for arg in argv[1:]]
    try:
        opts, args = getopt.getopt(fixed, "jnRuI:f:r:v:z:")
    except getopt.GetoptError as err:
        print(f"date: illegal option -- {err.opt}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    no_set, utc, input_format, iso, rfc, source, adjustments = False, False, None, None, False, None, []
    for opt, value in opts:
        if opt == "-j":
            no_set = True
        elif opt == "-u":
            utc = True
        elif opt == "-f":
            input_format = value
        elif opt == "-I":
            iso = value or "date"
        elif opt == "-R":
            rfc = True
        elif opt == "-r":
            source = value
        elif opt == "-v":
            adjustments.append(value)
        elif opt == "-z":
            os.environ["TZ"] = value
    if utc:
        os.environ["TZ"] = "UTC0"
    time.tzset()
    output_format = None
    if args and args[-1].startswith("+"):
        output_format = args.pop()[1:]
    if source is not None:
        if re.fullmatch(r"-?\d+", source):
            seconds = int(source)
        else:
            try:
                seconds = int(os.stat(source).st_mtime)
            except OSError as err:
                return _fail(f"{source}: {err.strerror}")
    else:
        seconds = int(time.time())
    moment = datetime.datetime.fromtimestamp(seconds)
    if args:
        if len(args) > 1:
            print(USAGE, file=sys.stderr)
            return 1
        if input_format is not None:
            try:
                parsed = time.strptime(args[0], input_format)
            except ValueError:
                return _fail(f"Failed conversion of ``{args[0]}'' using format ``{input_format}''")
            moment = datetime.datetime(*parsed[:6])
            if "%Y" not in input_format and "%y" not in input_format:
                moment = moment.replace(year=datetime.datetime.now().year)
        else:
            moment = _parse_operand(args[0], moment)
            if moment is None:
                return _fail("illegal time format")
        if not no_set:
            return _fail("settimeofday (timeval): Operation not permitted")
    for spec in adjustments:
        try:
            moment = _adjust(moment, spec)
        except ValueError:
            return _fail(f"-v{spec}: Cannot apply date adjustment")
    stamp = time.mktime(moment.timetuple())
    local = time.localtime(stamp)
    if output_format is not None:
        text = time.strftime(output_format.replace("%+", DEFAULT_FORMAT), local)
    elif iso is not None:
        offset = time.strftime("%z", local)
        offset = offset[:3] + ":" + offset[3:]
        formats = {"date": "%Y-%m-%d", "hours": "%Y-%m-%dT%H", "minutes": "%Y-%m-%dT%H:%M",
                   "seconds": "%Y-%m-%dT%H:%M:%S", "ns": "%Y-%m-%dT%H:%M:%S,000000000"}
        if iso not in formats:
            return _fail(f"invalid argument '{iso}' for -I")
        text = time.strftime(formats[iso], local) + ("" if iso == "date" else offset)
    elif rfc:
        text = time.strftime("%a, %d %b %Y %T %z", local)
    else:
        text = time.strftime(DEFAULT_FORMAT, local)
    print(text)
    return 0


def _parse_operand(text, now):
    """[[[[[[cc]yy]mm]dd]HH]MM[.SS]"""
    match = re.fullmatch(r"(\d{2,12})(?:\.(\d{2}))?", text)
    if not match or len(match.group(1)) % 2:
        return None
    digits, second = match.group(1), int(match.group(2) or 0)
    parts = [int(digits[i:i + 2]) for i in range(0, len(digits), 2)]
    minute = parts.pop()
    hour = parts.pop() if parts else now.hour
    day = parts.pop() if parts else now.day
    month = parts.pop() if parts else now.month
    year = now.year
    if parts:
        yy = parts.pop()
        year = parts.pop() * 100 + yy if parts else (2000 + yy if yy < 69 else 1900 + yy)
    try:
        return now.replace(year=year, month=month, day=day, hour=hour, minute=minute, second=second)
    except ValueError:
        return None
