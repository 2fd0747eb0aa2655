"""``python -m bench SUITE|all [--json]``; see bench/README.md."""

from bench._cli import main

raise SystemExit(main())
