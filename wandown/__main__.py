import sys

from wandown.cli import main

sys.exit(main())
