"""The runtime: run one container under PRoot.

- ``spec``: :class:`~.spec.ContainerSpec` and Docker's rules (command, env, user, ports);
- ``proot``: :class:`~.proot.ProotCapabilities` (detected from the binary) and the command line;
- ``runscript``: the readable, runnable ``run.sh`` (+ generated hosts/hostname/resolv.conf);
- ``rootfs``: each container's private copy of the image tree;
- ``process``: :class:`~.process.ContainerProcess` (tracee signals, Docker's stop, no leftovers);
- ``seccomp``: the ENOSYS exec wrapper for proots that do not translate statx & co;
- ``container``/``create``/``monitor``/``relay``: standalone containers (``opencontainer run``).

Nothing is imported here: import the submodule you need.
"""
