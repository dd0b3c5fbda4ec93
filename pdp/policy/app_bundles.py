"""Microsoft's application bundles: the app ids a bundle name in a policy stands for.

Conditional Access lets a policy name a bundle instead of apps: `Office365`,
`MicrosoftAdminPortals`, and the Windows Azure Service Management API app id (which Entra
applies to the Azure portal, Azure Resource Manager and the clients that call it). Which apps
a bundle holds is Microsoft's data, published as names on Microsoft Learn and changed over
time, so it lives in data files (`pdp/policy/bundles/*.json`), each naming its source pages,
the date they were read, and where every member's app id comes from. A pdp config document
extends or replaces a bundle (`pdp.policy.load`). Read once, at import; never per request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

BUNDLE_FILES = (
    "office365.json",
    "microsoft_admin_portals.json",
    "windows_azure_service_management_api.json",
)


@dataclass(frozen=True, slots=True)
class Source:
    """A page a bundle file was read from."""

    url: str
    read: str  # ISO date
    gives: str  # what the page contributed (member names, app ids)


@dataclass(frozen=True, slots=True)
class Member:
    """One app of a bundle: its app id (lower-case), Microsoft's name, and the id's source."""

    app_id: str
    name: str
    id_source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Bundle:
    """One application bundle as its data file states it."""

    name: str  # as policies write it (Graph's value, or the app id that stands for a bundle)
    description: str
    sources: tuple[Source, ...]
    members: tuple[Member, ...]
    unresolved: tuple[str, ...]  # member names no public source gives an app id for

    @property
    def app_ids(self) -> frozenset[str]:
        """The app ids a policy naming this bundle targets."""
        return frozenset(m.app_id for m in self.members)


def _bundle(file: str, data: dict[str, Any]) -> Bundle:
    """One data file as a Bundle; a malformed file is a packaging bug and fails loudly."""
    try:
        return Bundle(
            name=data["name"],
            description=data["description"],
            sources=tuple(Source(s["url"], s["read"], s["gives"]) for s in data["sources"]),
            members=tuple(
                Member(m["appId"].lower(), m["name"], m["idSource"], m.get("note", ""))
                for m in data["members"]
            ),
            unresolved=tuple(data["unresolved"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"pdp/policy/bundles/{file}: malformed bundle file ({exc!r})") from exc


def load_bundles() -> dict[str, Bundle]:
    """Every bundle shipped with pdp, by name."""
    folder = resources.files("pdp.policy") / "bundles"
    bundles: dict[str, Bundle] = {}
    for file in BUNDLE_FILES:
        bundle = _bundle(file, json.loads(folder.joinpath(file).read_text(encoding="utf-8")))
        bundles[bundle.name] = bundle
    return bundles


BUNDLES = load_bundles()
