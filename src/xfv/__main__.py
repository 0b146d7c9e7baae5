import sys

from xfv.cli import main

sys.exit(main())
