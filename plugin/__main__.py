"""`python -m plugin`: the same command line as `iam-create-access-key`."""

from .cli import main

raise SystemExit(main())
