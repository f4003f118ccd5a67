import sys

from srzoo.cli import main

sys.exit(main())
