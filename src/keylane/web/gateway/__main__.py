"""``python -m keylane.web.gateway``: run the embedded gateway until SIGINT or SIGTERM."""

from __future__ import annotations

import sys

from keylane.web.gateway import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
