"""sfmigrate: move Service Fabric clusters from thumbprint to common-name certificate declarations.

The library is the product; ``migrate.cli`` is a thin shell over it. The Azure twin used for demos,
tests and rehearsals lives in ``aztwin`` and is imported only by the commands that need it.
"""

__version__ = "0.1.0"
