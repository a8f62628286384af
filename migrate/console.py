"""What the command line prints around the library's work (issue 14): logging and its verbosity (-v, --debug),
errors as printed once on stderr, and apply's confirmation at a terminal."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from .errors import SfmigrateError

if TYPE_CHECKING:
    from .plan import Plan


def _one_line(error: BaseException | str) -> str:
    from .runner import one_line

    return one_line(error)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to whatever ``sys.stderr`` is at the time (click's test runner swaps it), each line redacted."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        from .safe_output import safe

        return safe(super().format(record))  # --debug traffic and credential reasons: never a token (issue 14)


def _handler(logger: logging.Logger, prefix: str) -> None:
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def configure_logging(verbose: bool = False) -> None:
    """sfmigrate's notes on stderr (with -v: the credential choice too); the SDKs' chatter only on errors."""
    logger = logging.getLogger("sfmigrate")
    _handler(logger, "sfmigrate")
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("azure").setLevel(logging.ERROR)


# Loggers --debug turns on: sfmigrate's per-request lines (method, URL, status, x-ms-request-id, duration),
# azure-core's HTTP logging policy (headers redacted by its allow-list; it never logs bodies) and
# azure-identity's reason for every credential it tried.
DEBUG_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.mgmt.core.policies", "azure.identity")


def set_verbosity(verbose: bool = False, debug: bool = False) -> None:
    """``-v``: sfmigrate's notes at INFO; ``--debug``: also DEBUG and the HTTP/credential traffic (redacted)."""
    if not (verbose or debug):
        return
    logger = logging.getLogger("sfmigrate")
    _handler(logger, "sfmigrate")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if debug:
        logger.setLevel(logging.DEBUG)
        azure = logging.getLogger("azure")
        _handler(azure, "azure")
        for name in DEBUG_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)


def _verbosity_option(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        set_verbosity(verbose=param.name == "verbose", debug=param.name == "debug")


def verbosity_options() -> list[click.Parameter]:
    """``-v/--verbose`` and ``--debug``, accepted after the subcommand as well as before it (issue 14)."""
    return [
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_verbosity_option,
                     help="Say more on stderr (which credential is used, for one)."),
        click.Option(["--debug"], is_flag=True, expose_value=False, callback=_verbosity_option,
                     help="Log HTTP traffic (method, URL, status, request id, duration; headers redacted) and every "
                          "credential's failure reason on stderr."),
    ]


def error_lines(exc: SfmigrateError) -> list[str]:
    """An error as printed once on stderr: its one line, then what it adds (per-credential reasons and a hint,
    "resumable", the throttling runbook for a transient fault that outlived the retries)."""
    from .errors import AzureRequestFailed
    from .runner import TRANSIENT_STATUS

    headline = getattr(exc, "headline", None)
    lines = [_one_line(headline() if callable(headline) else exc)]
    details = getattr(exc, "detail_lines", None)
    if callable(details):
        lines += [_one_line(line) if not line.startswith("  ") else "  " + _one_line(line) for line in details()]
    if isinstance(exc, AzureRequestFailed) and (exc.status is None or exc.status in TRANSIENT_STATUS):
        lines.append("Azure kept answering with a transient fault: see runbooks/failures/throttling.md")
    return lines


def print_error(exc: SfmigrateError) -> None:
    for line in error_lines(exc):
        click.echo(f"sfmigrate: {line}", err=True)


def confirm_at_terminal(plan: Plan) -> bool:
    """terraform's habit: the plan, then its summary last (declaration before -> after, the work), then a
    prompt only ``yes`` approves; anything else, or end of input, declines (issue 14)."""
    from .report import render_plan, should_color
    from .report.text import confirmation_summary

    click.echo(render_plan(plan, "text", color=should_color(sys.stdout)), nl=False)
    click.echo("")
    for line in confirmation_summary(plan):
        click.echo(line)
    click.echo("")
    return approved("Do you want to apply these steps?")


def approved(question: str) -> bool:
    """Ask ``question``; only ``yes`` approves; anything else, or end of input, declines (terraform's rule)."""
    click.echo(question)
    click.echo("  Only 'yes' will be accepted to approve.")
    click.echo("")
    click.echo("  Enter a value: ", nl=False)
    sys.stdout.flush()
    answer = sys.stdin.readline()  # "" at end of input: declined
    if not answer.endswith("\n"):
        click.echo("")
    return answer.strip() == "yes"


# The --ci option of every command that can speak to Azure DevOps (plan, apply, fleet plan).
CI_OPTION = click.option("--ci", "ci", type=click.Choice(["auto", "none", "azure-devops"]), default="auto", show_default=True,
                         help="Pipeline integration; 'auto' turns Azure DevOps logging commands on when TF_BUILD=True.")
