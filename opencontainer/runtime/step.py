"""``python -S -P step.py nsexec|native|netns|zygote ARGS``: a runtime step's ``main()``, run from
the module's cached bytecode.

Python compiles a script's whole source at every start (nsexec.py ~4 ms, native.py ~8 ms,
netns.py ~4 ms, once per container start, exec and health probe); a module imported from
this small file comes from its ``__pycache__`` instead. ``opencontainer`` and
``opencontainer.runtime`` become bare packages: their ``__init__`` (the public API's imports)
does not run. Standard library only, like the steps themselves.
"""

import os
import sys

STEPS = ("nsexec", "native", "netns", "zygote")


def run() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    for name, path in (("opencontainer", os.path.dirname(here)),
                       ("opencontainer.runtime", here)):
        if name not in sys.modules:
            module = type(sys)(name)
            module.__path__ = [path]
            sys.modules[name] = module
    step = sys.argv.pop(1) if len(sys.argv) > 1 else ""
    if step not in STEPS:
        sys.stderr.write(f"opencontainer: step.py: unknown step {step!r} (one of "
                         f"{', '.join(STEPS)})\n")
        return 125
    module = __import__(f"opencontainer.runtime.{step}", fromlist=["main"])
    return int(module.main())


if __name__ == "__main__":
    sys.exit(run())
