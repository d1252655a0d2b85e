"""specc: a GitOps spec compiler and sync agent for Kubernetes."""

__version__ = "0.1.0"
