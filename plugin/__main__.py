"""`python -m plugin`: the same command line as `iam-create-access-key`."""

from .hosts.cli import main

raise SystemExit(main())
