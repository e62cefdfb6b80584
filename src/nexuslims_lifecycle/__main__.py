"""Run the command line: ``python -m nexuslims_lifecycle``."""

from nexuslims_lifecycle.cli import main

if __name__ == "__main__":
    main()
