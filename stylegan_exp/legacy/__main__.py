"""`python -m stylegan_exp.legacy SRC.pkl OUT.npz`."""

import sys

from stylegan_exp.legacy import main

sys.exit(main())
