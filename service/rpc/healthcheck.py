"""Container health probe: ``python -m service.rpc.healthcheck`` exits 0 when the server is SERVING.

It calls the standard ``grpc.health.v1.Health/Check`` (no token needed). Defaults suit the
container: target ``127.0.0.1:$RADTRANSLATE_PORT`` (50051). For a TLS server pass ``--ca``
(or ``RADTRANSLATE_HEALTHCHECK_CA``), and for mutual TLS also ``--cert``/``--key``
(``RADTRANSLATE_HEALTHCHECK_CERT``/``_KEY``). Exit codes: 0 SERVING, 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m service.rpc.healthcheck", description=__doc__)
    parser.add_argument("--target", default=f"127.0.0.1:{env.get('RADTRANSLATE_PORT', '50051')}")
    parser.add_argument(
        "--service",
        default="radtranslate.v1.TranslationService",
        help="service to check ('' = the whole server)",
    )
    parser.add_argument("--ca", default=env.get("RADTRANSLATE_HEALTHCHECK_CA"))
    parser.add_argument("--cert", default=env.get("RADTRANSLATE_HEALTHCHECK_CERT"))
    parser.add_argument("--key", default=env.get("RADTRANSLATE_HEALTHCHECK_KEY"))
    parser.add_argument(
        "--server-name",
        default=env.get("RADTRANSLATE_HEALTHCHECK_SERVER_NAME"),
        help="TLS name to verify when it differs from the target host",
    )
    parser.add_argument("--timeout-s", type=float, default=3.0)
    args = parser.parse_args(argv)

    import grpc

    from service.rpc.client import TranslationClient

    try:
        with TranslationClient(
            args.target, ca_file=args.ca, cert_file=args.cert, key_file=args.key, server_name=args.server_name
        ) as client:
            status = client.health(args.service, timeout_s=args.timeout_s)
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(status)
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
