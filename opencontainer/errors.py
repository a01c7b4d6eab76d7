"""The exception tree of OpenContainer.

Every error a user can cause is an ``OpenContainerError``: its ``str()`` is one sentence meant for
a person, and ``exit_code`` is what the CLI exits with. The CLI catches only the root; anything
else is a bug and is reported as one.

::

    OpenContainerError                 (exit 1)
    ├── ConfigError                    bad settings, environment or command-line usage (exit 125)
    ├── ComposeError                   a compose file is wrong: names file, line and key
    ├── ImageError
    │   ├── ReferenceError_            an image reference that does not parse
    │   ├── RegistryError              the registry answered something we cannot use
    │   │   ├── AuthError              401/403, wrong or missing credentials
    │   │   └── ImageNotFound          unknown repository, tag or digest
    │   ├── DigestMismatch             a blob whose bytes do not hash to its digest
    │   └── UnpackError                a layer that cannot be applied (or tries to escape)
    ├── RuntimeBackendError
    │   └── ProotError                 proot missing, too old for what is asked, or failing
    ├── ContainerError                 wrong state for the operation
    │   └── ContainerNotFound          no such container
    └── StateError                     state on disk is missing, locked or unreadable
"""

from __future__ import annotations


class OpenContainerError(Exception):
    """Root of all user-facing errors. ``str(err)`` is one sentence."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(OpenContainerError):
    """Bad settings, environment variables or command-line usage: docker's usage status."""

    exit_code = 125


class ComposeError(OpenContainerError):
    """A compose file is invalid. Carries where: file, line (1-based) and key path."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = []
        if file:
            where.append(f"{file}:{line}" if line else file)
        if key:
            where.append(f"at '{key}'")
        full = f"{' '.join(where)}: {message}" if where else message
        super().__init__(full)
        self.reason = message


class ImageError(OpenContainerError):
    """Something went wrong with an image."""


class ReferenceError_(ImageError):
    """An image reference that does not parse."""


InvalidReference = ReferenceError_


class RegistryError(ImageError):
    """The registry answered with something we cannot use."""


class AuthError(RegistryError):
    """Authentication with a registry failed."""


class ImageNotFound(RegistryError):
    """Unknown repository, tag or digest (in a registry or in the local store)."""


class DigestMismatch(ImageError):
    """Downloaded bytes do not match the digest they were asked for."""


class UnpackError(ImageError):
    """A layer cannot be applied, e.g. it tries to write outside the root filesystem."""


class BuildError(ImageError):
    """A Dockerfile that does not parse, or a build step that fails (names file, line and
    instruction where it can)."""


class RuntimeBackendError(OpenContainerError):
    """The container runtime (proot) cannot do what is asked."""


class ProotError(RuntimeBackendError):
    """proot is missing, too old for a feature, or failed to start."""


class ContainerError(OpenContainerError):
    """No such container, or the container is in the wrong state for the operation."""


class ContainerNotFound(ContainerError):
    """No container has that name or ID."""


class StateError(OpenContainerError):
    """State on disk is missing, locked by another process, or unreadable."""


__all__ = [
    "AuthError",
    "BuildError",
    "ComposeError",
    "ConfigError",
    "ContainerError",
    "ContainerNotFound",
    "DigestMismatch",
    "ImageError",
    "ImageNotFound",
    "InvalidReference",
    "OpenContainerError",
    "ProotError",
    "ReferenceError_",
    "RegistryError",
    "RuntimeBackendError",
    "StateError",
    "UnpackError",
]
