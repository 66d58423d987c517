"""Validators for every file torjail generates, chosen by the file's kind.

The preview CLI, the deploy's preflight (before any change) and the tests all validate through `check_file`, so
a file that fails here never reaches a server. The deploy leaves torrc to tor on the server itself.
"""


def check_file(generated):
    """Problems of one GeneratedFile (empty when valid), as strings naming the line where there is one."""
    if generated.kind == "torrc":
        from torjail.checks.torrc import check_torrc

        return check_torrc(generated.content)
    if generated.kind == "pf.conf":
        from torjail.checks.pf import check_pf_conf

        return [str(error) for error in check_pf_conf(generated.content, filename=generated.path)]
    if generated.kind == "jail.conf":
        from torjail.checks.jailconf import check_jail_conf

        return check_jail_conf(generated.content)
    if generated.kind == "crontab":
        from torjail.checks.crontab import check_crontab

        return check_crontab(generated.content)
    if generated.kind == "rc.conf":
        from torjail.checks.rcconf import check_rc_conf

        return check_rc_conf(generated.content)
    return []
