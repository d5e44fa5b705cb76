"""`python -m vitcnn ...`: the command line lives in vitcnn/cli.py."""

import sys

from vitcnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
