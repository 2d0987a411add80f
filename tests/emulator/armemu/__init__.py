"""armemu: a local HTTPS emulator of Azure Resource Manager for Flexible scale sets.

The real azure-identity and azure-mgmt-* SDKs talk to it exactly as they talk to Azure.
Nothing here is part of the Ansible collection; it is a test and rehearsal tool.
"""

__version__ = "0.1.0"
