"""The ``opencontainer`` program (console script and ``python -m opencontainer``).

``opencontainer run ...`` goes to the user's engine service straight from here (cli/thin.py),
before the CLI (argparse, pathlib, typing: ~20 ms of imports) is loaded: the service parses
the line itself. Everything else, and a ``run`` the service does not take, is cli/main.py.
"""

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from . import thin

        code = thin.fast(argv[1:])
        if code is not None:
            return code
    from .main import main as cli_main

    return cli_main()
