"""`python -m codex_image_server`: the command line (cli.py)."""

import sys

from codex_image_server.cli import main

if __name__ == "__main__":
    sys.exit(main())
