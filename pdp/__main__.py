"""`python -m pdp`: the same command line as the `pdp` console script."""

from pdp.cli import main

raise SystemExit(main())
