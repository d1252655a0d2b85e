"""specc: a GitOps spec compiler and sync agent for Kubernetes."""

from pathlib import Path

__version__ = "0.1.0"
#: The name to install specc by (``pip install specc-gitops``); the import package and
#: the command are ``specc``. (The name ``specc`` on PyPI belongs to another project.)
DISTRIBUTION = "specc-gitops"
#: The data files shipped in the package. Read from the installed tree, not through
#: importlib.resources, whose imports (tempfile, shutil, zipfile...) cost ~3 % of a
#: `specc validate`; specc does not run from a zip.
DATA = Path(__file__).parent / "data"
