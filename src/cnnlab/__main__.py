"""``python -m cnnlab`` (also what ``torchrun -m cnnlab`` runs)."""

import sys

from cnnlab.cli.main import main

sys.exit(main())
