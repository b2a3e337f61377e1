"""keylane's HTTP servers (the ``web`` extra): the only package that imports the web framework.

Importing this package imports no web framework; its sub-packages do.
"""
