"`python -m tinytorch_progress …`: the `tito` command under a name that cannot clash with the course's own `tito` (hand-written)."
import sys
from tinytorch_progress.cli.main import main
if __name__ == "__main__": sys.exit(main())
