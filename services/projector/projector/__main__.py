"""`python -m projector` serves; `python -m projector migrate` applies its schema's
migrations as the owner role (MODELOG_POSTGRES_*), once, before it serves."""

import sys

if sys.argv[1:] == ["migrate"]:
    from modelog_platform.adapters.postgres import migrate_main
    from projector.main import MIGRATIONS

    migrate_main("projector", MIGRATIONS)
else:
    from projector.main import main

    main()
