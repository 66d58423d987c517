"""Validators for every file torjail generates, chosen by the file's kind.

The preview CLI, the deploy's preflight (before any change) and the tests all validate through `check_file`, so
a file that fails here never reaches a server. The deploy leaves torrc to tor on the server itself.
`python -m torjail check --file KIND FILE...` runs the same checks on files of one kind (`KINDS`).
"""

# The kinds of file a checker reads; other generated files (html, pkg.conf, ...) are not checked.
KINDS = ("torrc", "pf.conf", "jail.conf", "rc.conf", "crontab")


def check_text(kind, text, path):
    """Problems of the text of a file of that kind (empty when valid), as strings naming the line where there is
    one; pf.conf's name the file as pfctl does (`PATH:LINE: message`)."""
    if kind == "torrc":
        from torjail.checks.torrc import check_torrc

        return check_torrc(text)
    if kind == "pf.conf":
        from torjail.checks.pf import check_pf_conf

        return [str(error) for error in check_pf_conf(text, filename=path)]
    if kind == "jail.conf":
        from torjail.checks.jailconf import check_jail_conf

        return check_jail_conf(text)
    if kind == "crontab":
        from torjail.checks.crontab import check_crontab

        return check_crontab(text)
    if kind == "rc.conf":
        from torjail.checks.rcconf import check_rc_conf

        return check_rc_conf(text)
    return []


def check_file(generated):
    """Problems of one GeneratedFile (empty when valid), as strings naming the line where there is one."""
    return check_text(generated.kind, generated.content, generated.path)
