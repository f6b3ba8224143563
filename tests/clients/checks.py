"""Runs a client script's checks under RESP2 and RESP3: one line per check, a last line
`N passed, M failed`, exit 1 if any failed. Shared by the redis-py scripts."""

import sys


def run_checks(checks, connect, name_of):
    """`connect(protocol)` gives the client; `name_of()` a fresh key name per check."""
    failed = 0
    for protocol in (2, 3):
        client = connect(protocol)
        for check in checks:
            try:
                check(client, name_of())
                print(f"ok   resp{protocol} {check.__name__}")
            except Exception as e:  # noqa: BLE001 - report every failure
                failed += 1
                print(f"FAIL resp{protocol} {check.__name__}: {e!r}")
        client.close()
    print(f"{2 * len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
