"""specc: a GitOps spec compiler and sync agent for Kubernetes."""

__version__ = "0.1.0"
#: The name to install specc by (``pip install specc-gitops``); the import package and
#: the command are ``specc``. (The name ``specc`` on PyPI belongs to another project.)
DISTRIBUTION = "specc-gitops"
