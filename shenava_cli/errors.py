"""What goes wrong, as exit codes a script can act on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # something else went wrong
    USAGE = 2  # a bad option or argument (also typer's own code)
    UNREACHABLE = 3  # the server (or the S3 endpoint) cannot be reached
    AUTH = 4  # no key, or the key was refused (401/403)
    NOT_FOUND = 5  # no such job, batch or file (404)
    REFUSED = 6  # the server refused the request: unsupported media, bad options (4xx)
    JOB_FAILED = 7  # the transcription ended FAILED or STOPPED
    SERVER = 8  # the server failed (5xx)


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def code_for_status(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status >= 500:
        return ExitCode.SERVER
    return ExitCode.REFUSED
