"""`python -m gateway.admin drain|undrain|state`: call this pod's admin listener, with
the address and token from the same environment as the gateway (`ADMIN__HOST`,
`ADMIN__PORT`, `ADMIN__TOKEN`). The chart's preStop hook runs
`python -m gateway.admin drain --after-s N`: wait for the fronts to forget the pod, then
drain every worker."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from gateway.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.admin", description=__doc__)
    parser.add_argument("action", choices=["drain", "undrain", "state"])
    parser.add_argument(
        "--timeout-s", type=float, default=None, help="drain deadline (default: the pod's)"
    )
    parser.add_argument(
        "--after-s", type=float, default=0.0, help="wait this long first (a preStop hook)"
    )
    args = parser.parse_args(argv)
    admin = Settings().admin
    path = {"drain": "/admin/drain", "undrain": "/admin/undrain", "state": "/admin/state"}[
        args.action
    ]
    if args.action == "drain" and args.timeout_s is not None:
        path += f"?timeout_s={args.timeout_s:g}"
    host = f"[{admin.host}]" if ":" in admin.host else admin.host
    request = urllib.request.Request(
        f"http://{host}:{admin.port}{path}", method="GET" if args.action == "state" else "POST"
    )
    if admin.token is not None:
        request.add_header("Authorization", f"Bearer {admin.token.get_secret_value()}")
    time.sleep(args.after_s)
    try:
        with urllib.request.urlopen(request, timeout=3600 + 60) as response:
            print(json.dumps(json.loads(response.read())))
            return 0
    except urllib.error.HTTPError as err:
        print(
            f"{args.action}: HTTP {err.code} {err.read().decode(errors='replace')}", file=sys.stderr
        )
    except OSError as err:
        print(f"{args.action}: {err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
