"""Read and write OPML, the subscription list format every feed reader exchanges."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = ["OpmlError", "OpmlFeed", "parse_opml", "render_opml"]


@dataclass(frozen=True)
class OpmlFeed:
    name: str
    url: str


class OpmlError(ValueError):
    """The file is not usable OPML."""


def parse_opml(data: bytes | str) -> list[OpmlFeed]:
    """Return the feeds of an OPML document, folders flattened, in document order, URLs unique."""
    try:
        root = SafeET.fromstring(data)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise OpmlError(f"not well-formed OPML: {exc}") from None
    if root.tag.lower() != "opml":
        raise OpmlError(f"root element is <{root.tag}>, not <opml>")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        name = (outline.get("title") or outline.get("text") or url).strip()
        feeds.append(OpmlFeed(name=name, url=url))
    return feeds


def render_opml(feeds: list[OpmlFeed], title: str = "newsmon feeds") -> str:
    """Return an OPML 2.0 document listing the feeds."""
    opml = Element("opml", version="2.0")
    head = SubElement(opml, "head")
    SubElement(head, "title").text = title
    body = SubElement(opml, "body")
    for feed in feeds:
        SubElement(body, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(opml, encoding="unicode") + "\n"
