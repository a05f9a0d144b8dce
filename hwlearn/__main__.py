import sys

from hwlearn.cli import main

sys.exit(main())
