"""``python -m local_lm --port 8765 ...``: the same server as ``manage.py run_local_lm``, without Django."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from local_lm.server import add_server_arguments, serve_until_signalled, server_from_options


def build_parser(prog: str = "python -m local_lm") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m local_lm") -> int:
    parser = build_parser(prog)
    options = vars(parser.parse_args(argv))
    try:
        server = server_from_options(options)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        serve_until_signalled(server, lambda line: print(line, flush=True))
    except OSError as exc:  # the port is taken, most often
        parser.exit(1, f"{prog}: error: cannot listen on {server.host}:{server.port}: {exc.strerror or exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
