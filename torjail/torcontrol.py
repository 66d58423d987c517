"""Ask a jail's tor over its control socket with stem, through the SSH connection pyinfra already holds.

The control socket and its cookie live inside the jail, which runs internet-facing software: both are reached
by commands run inside the jail (`jexec`), never by a host path the jail could have pointed elsewhere. A channel
of the SSH connection runs the jail's nc(1) on the socket, and stem speaks tor's control protocol over that
channel as over a local socket. The cookie travels on the channel only, never on a command line or in pyinfra's
output. Every answer tor does not give, or gives in a form not expected, is None: the status shows it as such.
"""

from __future__ import annotations

from shlex import quote

import stem
import stem.control
import stem.socket
from pyinfra.api import QuoteString, StringCommand

CONTROL_SOCKET = "/var/db/tor/control"
COOKIE = "/var/db/tor/control_auth_cookie"
TIMEOUT = 20
ACCOUNTING = ("accounting/enabled", "accounting/hibernating", "accounting/bytes", "accounting/bytes-left",
              "accounting/interval-start",
              "accounting/interval-end")


class _Channel:
    """A paramiko channel as stem uses a socket: ``makefile(mode=...)`` (paramiko takes the mode positionally),
    ``shutdown`` and ``close``."""

    def __init__(self, channel):
        self._channel = channel

    def makefile(self, mode):
        return self._channel.makefile(mode)

    def shutdown(self, how):
        self._channel.shutdown(how)

    def close(self):
        self._channel.close()


class ChannelSocket(stem.socket.ControlSocket):
    """A tor control connection carried by a command's channel on an SSH transport (paramiko)."""

    def __init__(self, transport, command):
        super().__init__()
        self._transport = transport
        self._command = command
        self.connect()

    def _make_socket(self):
        try:
            channel = self._transport.open_session(timeout=TIMEOUT)
            channel.settimeout(TIMEOUT)
            channel.exec_command(self._command)
        except Exception as error:  # paramiko's SSHException and socket errors alike
            raise stem.SocketError(f"cannot open a channel to tor's control socket: {error}") from error
        return _Channel(channel)


def transport(connector):
    """The paramiko transport of a pyinfra SSH connector, or None (not connected, or another connector)."""
    client = getattr(connector, "client", None)
    get_transport = getattr(client, "get_transport", None)
    return get_transport() if get_transport else None


def _cookie(host, jail_name):
    """The control cookie's bytes, read by od inside the jail (never printed), or None."""
    command = StringCommand("jexec", QuoteString(jail_name), "od", "-An", "-v", "-tx1", COOKIE)
    status, output = host.run_shell_command(command, print_output=False, print_input=False)
    text = "".join(output.stdout_lines).replace(" ", "")
    if not status or len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def parse_accounting(answers):
    """{name: value} from GETINFO strings: integers for bytes, the period's start and end as
    "YYYY-MM-DD HH:MM:SS" (UTC); None for anything missing or malformed."""
    def pair(text):
        try:
            read, written = (int(word) for word in text.split())
        except (AttributeError, ValueError):
            return None
        return {"read": read, "written": written}

    enabled = answers.get("accounting/enabled")
    hibernating = answers.get("accounting/hibernating")
    return {
        "enabled": {"1": True, "0": False}.get(enabled),
        "hibernating": hibernating if hibernating in ("awake", "soft", "hard") else None,
        "bytes": pair(answers.get("accounting/bytes")),
        "bytes_left": pair(answers.get("accounting/bytes-left")),
        "interval_start": answers.get("accounting/interval-start") or None,
        "interval_end": answers.get("accounting/interval-end") or None,
    }


def ask_tor(host, jail_name):
    """What the jail's tor says: {"version", "accounting", "error"}; "error" names what went wrong, if anything,
    and every answer not had is None."""
    found = {"version": None, "accounting": parse_accounting({}), "error": None}
    link = transport(host.connector)
    if link is None:
        found["error"] = "no SSH transport to reach tor's control socket"
        return found
    cookie = _cookie(host, jail_name)
    if cookie is None:
        found["error"] = f"cannot read tor's control cookie {COOKIE} in jail {jail_name}"
        return found
    try:
        sock = ChannelSocket(link, f"jexec {quote(jail_name)} nc -U {CONTROL_SOCKET}")
        controller = stem.control.Controller(sock)
        try:
            reply = controller.msg(f"AUTHENTICATE {cookie.hex()}")
            if not reply.is_ok():
                found["error"] = f"tor refused the control cookie: {reply}"
                return found
            found["version"] = controller.get_info("version", None)
            answers = {name: controller.get_info(name, None) for name in ACCOUNTING}
            found["accounting"] = parse_accounting(answers)
        finally:
            controller.close()
    except stem.ControllerError as error:
        found["error"] = f"tor's control socket did not answer: {error or type(error).__name__}"
    return found
