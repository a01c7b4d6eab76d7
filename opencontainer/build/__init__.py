"""Building images from Dockerfiles without root (``build``, ``compose build``)."""
