import sys

from modelog import logs
from promoter.app import app, settings

if __name__ == "__main__":
    logs.configure("promoter")
    # Faust reads its worker options from argv.
    sys.argv = ["promoter", "worker", "--loglevel", "info",
                "--web-port", str(settings.promoter_port), "--web-host", settings.host]
    app.main()
