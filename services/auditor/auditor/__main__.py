"""`python -m auditor` serves; `python -m auditor migrate` applies its schema's
migrations as the owner role (MODELOG_POSTGRES_*), once, before it serves."""

import sys

if sys.argv[1:] == ["migrate"]:
    from auditor.main import MIGRATIONS
    from modelog_platform.adapters.postgres import migrate_main

    migrate_main("auditor", MIGRATIONS)
else:
    from auditor.main import main

    main()
