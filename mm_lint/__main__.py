from mm_lint.cli import main

raise SystemExit(main())
