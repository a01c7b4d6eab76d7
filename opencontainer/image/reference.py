"""Image references, parsed exactly as Docker parses them (distribution/reference grammar).

::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ("/" path-component)*
    domain     := host [":" port]        (first component with "." or ":", "localhost", or
                                          upper-case letters; otherwise the name is on docker.io)
    component  := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex       (sha256: exactly 64 lower-case hex digits)

``postgres`` normalises to ``docker.io/library/postgres:latest``; :meth:`Reference.familiar`
gives back the short form Docker shows (``postgres:15``).
"""

from __future__ import annotations

import re

import attrs

from ..errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")


@attrs.frozen
class Reference:
    """A normalised image reference. ``str()`` is the full form."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path`` — e.g. ``docker.io/library/postgres``."""
        return f"{self.domain}/{self.path}"

    @property
    def reference(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar_name(self) -> str:
        """The repository as Docker displays it (``postgres``, ``user/app``, ``ghcr.io/o/r``)."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_PREFIX) :]
            return self.path
        return self.repository

    def familiar(self) -> str:
        """Short display form: ``postgres:15``, ``user/app@sha256:...``."""
        out = self.familiar_name()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        return attrs.evolve(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return attrs.evolve(self, digest=digest)

    def tagged(self) -> str:
        """``repository:tag`` (``latest`` when there is no tag)."""
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"


def validate_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise InvalidReference(f"invalid digest {digest!r}: expected algorithm:hex.")
    algo, _, hexpart = digest.partition(":")
    if algo == "sha256" and not _SHA256_HEX.fullmatch(hexpart):
        raise InvalidReference(f"invalid digest {digest!r}: sha256 needs 64 lower-case hex digits.")
    if algo not in ("sha256", "sha512"):
        raise InvalidReference(f"unsupported digest algorithm {algo!r} in {digest!r}.")
    return digest


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise like ``docker pull`` does. Raises :class:`InvalidReference`.

    Without tag and digest the tag is ``latest`` (``default_tag=False`` leaves it unset).
    """
    original = text
    if not text or any(c.isspace() for c in text):
        raise InvalidReference(f"invalid reference format: {original!r} is empty or has spaces.")
    digest: str | None = None
    if "@" in text:
        text, _, digest = text.partition("@")
        validate_digest(digest)
    tag: str | None = None
    # the tag is after the last ":" that follows the last "/" (a ":" before it is a port)
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid reference format: bad tag {tag!r} in {original!r}.")
    if not text:
        raise InvalidReference(f"invalid reference format: {original!r} has no repository name.")
    if len(text) > NAME_TOTAL_MAX:
        raise InvalidReference(
            f"invalid reference format: repository name in {original!r} is longer than "
            f"{NAME_TOTAL_MAX} characters."
        )
    domain, path = _split_domain(text)
    if domain != DEFAULT_DOMAIN and not _DOMAIN.fullmatch(domain):
        raise InvalidReference(f"invalid reference format: bad registry host {domain!r}.")
    if path != path.lower() and all(_COMPONENT.fullmatch(c) for c in path.lower().split("/")):
        raise InvalidReference(
            f"invalid reference format: repository name {path!r} must be lowercase."
        )
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"invalid reference format: {original!r} is not a valid image reference."
            )
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def normalize(text: str) -> str:
    """The full normalised string of a reference (``docker.io/library/postgres:latest``)."""
    return str(parse_reference(text))


def familiar(text: str) -> str:
    """The short display form of a reference string (``postgres:latest``)."""
    return parse_reference(text).familiar()


__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "InvalidReference",
    "Reference",
    "familiar",
    "normalize",
    "parse_reference",
    "validate_digest",
]
