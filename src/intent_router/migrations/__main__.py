import sys

from intent_router.migrations import main

sys.exit(main(sys.argv[1:]))
