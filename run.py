"""Start the job runner's worker: ``python run.py --help`` lists options and exit codes."""

import sys

from runner.worker.main import main

if __name__ == "__main__":
    sys.exit(main())
