from llmmon.cli import main

raise SystemExit(main())
