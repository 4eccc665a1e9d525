#!/usr/bin/env python
import os
import sys

# The local LM is a plain HTTP server: it runs without loading Django's settings, so it needs
# no SECRET_KEY or database (`manage.py run_local_lm` and `python -m local_lm` are the same server).
STANDALONE_COMMANDS = {"run_local_lm": "local_lm.__main__"}


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in STANDALONE_COMMANDS:
        from importlib import import_module

        entry = import_module(STANDALONE_COMMANDS[command])
        sys.exit(entry.main(sys.argv[2:], prog=f"{os.path.basename(sys.argv[0])} {command}"))

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
