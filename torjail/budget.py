"""The traffic budget: from a provider's monthly quota to tor's accounting and bandwidth lines.

Providers bill a calendar month in decimal units (1 TB = 10^12 bytes), often both directions together; tor counts
an accounting period (a day, a week or a month from AccountingStart) in binary units (1 GBytes = 2^30 bytes) and
hibernates once AccountingMax is used up. A relay given only AccountingMax runs flat out until its allowance is
gone and sleeps for the rest of the period; the plan caps the rate instead, so the allowance lasts the period, and
proves that no calendar month, of any length and however the periods fall across it, carries more than the quota
less the reserve.

The arithmetic, for a quota Q and a reserve R a month, and the longest month T = 31 days = 2 678 400 s:

    available     A = Q - R                                      what the relay may use in any calendar month
    directions    c = 2 when the provider counts both directions (AccountingRule sum), else 1 (AccountingRule max)
    rate          r = floor(A / (c * (T + 1)) / 1024) KBytes/s   RelayBandwidthRate = RelayBandwidthBurst, each way
    allowance     M = k * r * P                                  AccountingMax; P the longest period (1, 7, 31 days),
                                                                 k = 2 with AccountingRule sum (tor adds both ways)

tor's token bucket passes at most r * t + b bytes each way in t seconds (b the burst, here r), so a month carries
at most c * r * (T + 1) <= A; a relay at full rate uses k * r * P = M in a period of P seconds: it stays awake.
The worst case of a month adds, for every period overlapping it, the lesser of what accounting lets through the
period and what the rate lets through the part inside the month (a daily period from 12:00 puts two half days at
the ends of the month), and takes the lesser of that sum and the rate's bound for the whole month. tor reads
AccountingStart in the server's local time; the quota's month is taken to be the server's calendar month.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

DAY = 86400
MONTH_DAYS = (28, 29, 30, 31)
LONGEST_MONTH = 31 * DAY
PERIOD_DAYS = {"day": 1, "week": 7, "month": 31}  # the longest period of each kind
KBYTES = 1024
MIN_RELAY_RATE = 75 * KBYTES  # tor refuses a RelayBandwidthRate under 75 KBytes for a relay
MAX_RELAY_RATE = 2**31  # and over 2 GBytes

# Units of a quota, each named for what it is: decimal as providers bill, binary by IEC and by tor's names.
TRAFFIC_UNITS = {
    "B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50,
    "bytes": 1, "KBytes": 2**10, "MBytes": 2**20, "GBytes": 2**30, "TBytes": 2**40,
}
TRAFFIC = re.compile(r"(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,6}))? (" + "|".join(TRAFFIC_UNITS) + r")")
TOR_UNITS = (("TBytes", 2**40), ("GBytes", 2**30), ("MBytes", 2**20), ("KBytes", 2**10))
ACCOUNTING_START = re.compile(r"(day|week|month)(?: ([0-9]{1,2}))? ([0-9]{2}):([0-9]{2})")


class BudgetError(ValueError):
    """A plan that cannot be made or would overrun the quota; `setting` is the setting to change."""

    def __init__(self, setting, message):
        self.setting = setting
        super().__init__(message)


def parse_traffic(value):
    """'2 TB' -> 2 000 000 000 000 bytes; '2 TiB' and '2 TBytes' -> 2 199 023 255 552; '1.5 TB' is allowed when
    it comes to whole bytes."""
    match = TRAFFIC.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("expected an amount and a unit like '2 TB' (decimal kB MB GB TB PB, as providers bill) or "
                         f"'2 TiB' / '2 TBytes' (binary, tor's units), got {value!r}")
    whole, fraction, unit = match.groups()
    amount = Decimal(f"{whole}.{fraction or 0}") * TRAFFIC_UNITS[unit]
    if amount != amount.to_integral_value():
        raise ValueError(f"expected a whole number of bytes, got {value!r} ({amount} bytes)")
    return int(amount)


def tor_amount(number):
    """Bytes in the largest of tor's units that holds them exactly: 64 408 780 800 -> '61425 MBytes'."""
    for unit, size in TOR_UNITS:
        if number and number % size == 0:
            return f"{number // size} {unit}"
    return f"{number} bytes"


def decimal_amount(number):
    """Bytes for a reader of a provider's bill, rounded down: 1 996 672 950 272 -> '1.9966 TB'."""
    for unit in ("TB", "GB", "MB", "kB"):
        if number >= TRAFFIC_UNITS[unit]:
            return f"{number * 10**4 // TRAFFIC_UNITS[unit] / 10**4:.4f} {unit}"
    return f"{number} B"


def _pieces(month, first, period):
    """Seconds of each period inside a month of `month` seconds whose first period boundary is `first` s in."""
    pieces = [first] if first else []
    boundary = first
    while boundary < month:
        pieces.append(min(period, month - boundary))
        boundary += period
    return pieces


def layouts(start, month_days):
    """Every way the periods of AccountingStart `start` can fall across a month of `month_days` days: lists of
    the seconds each overlapping period spends inside the month."""
    kind, day, hour, minute = ACCOUNTING_START.fullmatch(start).groups()
    clock = int(hour) * 3600 + int(minute) * 60
    month = month_days * DAY
    if kind == "day":
        return [_pieces(month, clock, DAY)]
    if kind == "week":  # the month may begin on any weekday; tor's D is 1 (Monday) to 7 (Sunday)
        return [_pieces(month, (int(day) - 1 - weekday) % 7 * DAY + clock, 7 * DAY) for weekday in range(7)]
    return [_pieces(month, (int(day) - 1) * DAY + clock, month)]


def tor_count_factor(rule):
    """How many directions tor's accounting adds up: `sum` counts both, `max`, `in` and `out` one."""
    return 2 if rule == "sum" else 1


def period_cap(allowance, rule, both_directions):
    """The most a period can carry as the provider counts it, by tor's accounting alone; None: unbounded.

    AccountingRule sum counts in + out: the provider counts no more. max stops when either direction reaches the
    allowance: both directions together carry twice that. in or out leave the other direction unaccounted.
    """
    if rule == "sum" or (rule == "max" and not both_directions):
        return allowance
    if rule == "max":
        return 2 * allowance
    return None


def worst_month(allowance, rule, rate, burst, start, both_directions):
    """The most traffic (as the provider counts it) any calendar month can carry, over every month length and
    every way the periods fall across it; None when nothing bounds it."""
    directions = 2 if both_directions else 1
    cap = period_cap(allowance, rule, both_directions)

    def by_rate(seconds):
        return None if rate is None else directions * (rate * seconds + burst)

    worst = 0
    for month_days in MONTH_DAYS:
        for pieces in layouts(start, month_days):
            total = 0
            for piece in pieces:
                bounds = [bound for bound in (cap, by_rate(piece)) if bound is not None]
                if not bounds:
                    return None
                total += min(bounds)
            if rate is not None:
                total = min(total, by_rate(month_days * DAY))
            worst = max(worst, total)
    return worst


@dataclass(frozen=True)
class Plan:
    """The accounting and bandwidth lines of one relay's torrc, and the numbers `python -m torjail budget` shows."""

    quota: int
    reserve: int
    accounting_max: int
    accounting_start: str
    accounting_rule: str
    rate: int
    burst: int
    awake_share: float  # of the longest period, with the relay at full rate
    worst_month: int

    @property
    def available(self):
        return self.quota - self.reserve


def _largest_allowance(limit, fits):
    """The largest multiple of a KByte up to `limit` for which fits(allowance) holds (fits is monotonic)."""
    low, high = 0, limit // KBYTES
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle * KBYTES) else (low, middle - 1)
    return low * KBYTES


def make_plan(quota, reserve, start, both_directions, accounting_max=None, rule=None, rate=None, burst=None):
    """Plan one relay's accounting; the explicit values (not None) replace the planned ones and are checked.

    Raises BudgetError naming the setting and showing the numbers when the quota cannot carry a relay or an
    explicit value lets a month carry more than the quota less the reserve.
    """
    available = quota - reserve
    if available <= 0:
        raise BudgetError("traffic_reserve", f"expected less than traffic_quota ({decimal_amount(quota)}), got "
                                             f"{decimal_amount(reserve)}: nothing is left for the relay")
    directions = 2 if both_directions else 1
    rule = rule or ("sum" if both_directions else "max")
    kind = ACCOUNTING_START.fullmatch(start).group(1)
    period = PERIOD_DAYS[kind] * DAY
    by_quota = available // (directions * (LONGEST_MONTH + 1)) // KBYTES * KBYTES
    if rate is None:
        spread = by_quota if accounting_max is None else \
            accounting_max // (tor_count_factor(rule) * period) // KBYTES * KBYTES
        rate = min(max(spread, MIN_RELAY_RATE) if accounting_max is not None else spread, MAX_RELAY_RATE)
        if rate < MIN_RELAY_RATE:
            raise BudgetError("traffic_quota", (
                f"expected a quota that carries tor's minimum relay rate of 75 KBytes/s: "
                f"{decimal_amount(quota)} less {decimal_amount(reserve)} reserved leaves {decimal_amount(available)} "
                f"a month, {available // (directions * (LONGEST_MONTH + 1))} bytes/s each way over 31 days"
                + (" with both directions counted" if both_directions else "")
                + f"; 75 KBytes/s needs {decimal_amount(directions * MIN_RELAY_RATE * (LONGEST_MONTH + 1))}"))
    burst = rate if burst is None else burst
    if burst < rate:
        raise BudgetError("bandwidth_burst", f"expected at least the rate {tor_amount(rate)}, got {tor_amount(burst)}")
    if accounting_max is None:
        def fits(allowance):
            return worst_month(allowance, rule, rate, burst, start, both_directions) <= available
        accounting_max = _largest_allowance(tor_count_factor(rule) * rate * period, fits)
        if not accounting_max:
            raise BudgetError("bandwidth_rate", f"expected a rate whose month stays under {decimal_amount(available)}"
                                                f": at {tor_amount(rate)} with AccountingRule {rule} no "
                                                "AccountingMax does")
    worst = worst_month(accounting_max, rule, rate, burst, start, both_directions)
    if worst is None or worst > available:
        shown = "no bound" if worst is None else decimal_amount(worst)
        raise BudgetError("accounting_max", (
            f"AccountingMax {tor_amount(accounting_max)} ({rule}) with RelayBandwidthRate {tor_amount(rate)} "
            f"lets a month carry {shown}, more than traffic_quota {decimal_amount(quota)} less traffic_reserve "
            f"{decimal_amount(reserve)} = {decimal_amount(available)}"))
    awake = min(1.0, accounting_max / (tor_count_factor(rule) * rate * period))
    return Plan(quota, reserve, accounting_max, start, rule, rate, burst, awake, worst)
