"""sfmigrate's "now" is Azure's: the latest Date header it saw (issue 12, "One clock")."""

from __future__ import annotations

import datetime as dt

from migrate.cloud.policies import AzureClock


def test_the_clock_follows_the_latest_date_header_and_ignores_bad_ones() -> None:
    clock = AzureClock()
    before = dt.datetime.now(dt.timezone.utc)
    assert clock.now() >= before  # nothing seen yet: this machine's clock
    clock.saw("Wed, 03 Dec 2031 10:00:00 GMT")
    clock.saw("Wed, 03 Dec 2031 09:00:00 GMT")  # an older answer arriving late does not move it back
    for bad in (None, "", "yesterday", "Wed, 03 Dec 2031 11:00:00"):  # no zone: not trusted
        clock.saw(bad)
    assert clock.now() == dt.datetime(2031, 12, 3, 10, 0, tzinfo=dt.timezone.utc)
