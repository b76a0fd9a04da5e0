"""Run the stand-in as its own process (for the benchmark).

    uv run python -m app.devtools.standin --port 0 --shop bench.myshopify.com \
        --token TOKEN --customers 10000 --orders 50000 --line-items 5

    # a fleet: fleet-0 ... fleet-2999.myshopify.com, each answering after 200 ms
    uv run python -m app.devtools.standin --port 0 --fleet 3000 --token TOKEN \
        --customers 2 --orders 3 --delay-ms 200

prints "READY http://127.0.0.1:PORT/{shop}" once listening and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import ShopifyStandIn


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.devtools.standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--shop", action="append", default=[], help="repeat for more shops")
    parser.add_argument(
        "--fleet", type=int, default=0, help="also N shops named <prefix>-<n>.myshopify.com"
    )
    parser.add_argument("--fleet-prefix", default="fleet")
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="every Admin API call answers after this"
    )
    parser.add_argument("--token", required=True)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--orders", type=int, default=0)
    parser.add_argument("--line-items", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bucket-size", type=float, default=2000)
    parser.add_argument("--restore-rate", type=float, default=100.0)
    parser.add_argument("--bulk-polls", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    domains = [
        *args.shop,
        *(f"{args.fleet_prefix}-{number}.myshopify.com" for number in range(args.fleet)),
    ]
    if not domains:
        sys.exit("error: give --shop or --fleet")
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    with ShopifyStandIn(args.host, args.port, delay=args.delay_ms / 1000) as standin:
        for domain in domains:
            shop = standin.add_shop(
                domain,
                token=args.token,
                bucket_size=args.bucket_size,
                restore_rate=args.restore_rate,
            )
            shop.bulk_polls_to_complete = args.bulk_polls
            shop.generate(
                customers=args.customers,
                orders=args.orders,
                line_items=args.line_items,
                seed=args.seed,
            )
        sys.stdout.write(f"READY {standin.base_url}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
