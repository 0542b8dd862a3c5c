"""`python -m siteops.sim.odoo`: serve the simulated Odoo (see `siteops.sim.odoo.main`)."""

import sys

from siteops.sim.odoo import main

if __name__ == "__main__":
    sys.exit(main())
