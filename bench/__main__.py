"""`python -m bench`: one benchmark run (see bench/README.md)."""

from bench.run import main

raise SystemExit(main())
