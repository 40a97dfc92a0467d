import sys

from robinterp.cli import main

sys.exit(main())
