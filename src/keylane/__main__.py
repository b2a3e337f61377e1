"""``python -m keylane``: the ``keylane`` command."""

from keylane.cli.main import main

if __name__ == "__main__":
    main()
