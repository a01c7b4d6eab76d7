"""The Docker Engine API (``opencontainer system service``): see :mod:`.server`."""
