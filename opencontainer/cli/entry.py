"""The ``opencontainer`` program (console script and ``python -m opencontainer``).

``opencontainer run ...`` and ``build ...`` go to the user's engine service straight from
here (cli/thin.py), before the CLI (argparse, pathlib, typing: ~20 ms of imports; a build's
asyncio, anyio and builder: ~150 ms more) is loaded: the service parses the line itself.
Everything else, and what the service does not take, is cli/main.py.
"""

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] in (["run"], ["build"]):
        try:
            from . import thin

            code = thin.fast(argv[0], argv[1:])
        except KeyboardInterrupt:  # Ctrl-C before the service had the request: nothing done
            sys.stderr.write("Interrupted.\n")
            return 130
        if code is not None:
            return code
    from .main import main as cli_main

    return cli_main()
