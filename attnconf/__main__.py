"""`python -m attnconf` is the `attnconf` command."""
from attnconf.cli import main

raise SystemExit(main())
