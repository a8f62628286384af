"""Files named by the user or the plan file, read with a size limit and checked for what they must hold
(issue 13: bad input never gives "internal error"; ``/dev/zero`` as a plan file must not hang)."""

from __future__ import annotations

import errno
import warnings
from pathlib import Path

from .errors import OperationalError, SfmigrateError, UsageError

PLAN_FILE_LIMIT = 4 * 1024 * 1024  # a plan file or a saved plan: far more than any real one
PEM_FILE_LIMIT = 4 * 1024 * 1024  # a CA bundle (certifi's is ~300 KB)
# errors that mean "the path you gave cannot be used" (exit 64); others are the environment's (exit 1)
_PATH_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP}


def read_limited(path: str | Path, what: str, limit: int = PLAN_FILE_LIMIT) -> bytes:
    """At most ``limit`` bytes of ``path``; a longer file (or an endless one) is refused naming ``what``."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{what}: '{file}' does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{what}: '{file}' is a directory") from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot read '{file}': {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UsageError(f"{what}: '{file}' is larger than {limit // (1024 * 1024)} MiB; not a plan or certificate file")
    return data


def read_text_limited(path: str | Path, what: str, limit: int = PLAN_FILE_LIMIT) -> str:
    try:
        return read_limited(path, what, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what}: '{path}' is not UTF-8 text") from None


def check_certificate_file(path: str, field: str, *, pem_only: bool = True) -> None:
    """``path`` holds at least one certificate, or one line naming it: PEM for ``cloud.caBundle`` (what TLS
    reads); for ``goal.issuerCertificates`` whatever discovery reads (``x509.certificates_in``: PEM, DER, PKCS#7)."""
    from cryptography import x509

    from .x509 import certificates_in

    data = read_limited(path, field, PEM_FILE_LIMIT)
    try:
        with warnings.catch_warnings():  # public bundles hold old roots cryptography warns about (negative serials)
            warnings.simplefilter("ignore")
            found = len(x509.load_pem_x509_certificates(data)) if pem_only else len(certificates_in(data))
    except ValueError:
        found = 0
    if not found:
        kind = "PEM certificate (-----BEGIN CERTIFICATE-----)" if pem_only else "certificate (PEM, DER or PKCS#7)"
        raise UsageError(f"{field}: '{path}' holds no {kind}")


def output_error(option: str, path: str | Path, exc: OSError) -> SfmigrateError:
    """An output file that cannot be written: the user's path (exit 64) or the machine (exit 1), one line."""
    reason = exc.strerror or str(exc)
    if exc.errno in _PATH_ERRNOS:
        return UsageError(f"{option} {path}: cannot write: {reason}")
    return OperationalError(f"{option} {path}: cannot write: {reason}")
