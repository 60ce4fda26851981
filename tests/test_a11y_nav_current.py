"""The main navigation says where the reader is, not only in bold (issue 19).

The link of the page shown carries aria-current="page"; on a page inside a section (a
project's protocol under Projects, a template under Templates) the section's link carries
aria-current="location" (not "true": that marks a protocol's linked entry). A screen reader
says "current page" where a sighted reader sees the bold, darker link (WCAG 1.3.1). Pages
outside the navigation (the profile) mark none.
"""

from __future__ import annotations

import re

from domain import projects as domain_projects

NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)
LINK = re.compile(r"<a ([^>]*)>")


def current_links(html: str) -> dict[str, str]:
    """href -> aria-current of the main navigation's links that have one."""
    nav = NAV.search(html).group(1)
    found = {}
    for attributes in LINK.findall(nav):
        href = re.search(r'href="([^"]*)"', attributes).group(1)
        if current := re.search(r'aria-current="([^"]*)"', attributes):
            found[href] = current.group(1)
    return found


def test_the_nav_marks_the_current_page_and_section(web):
    project = domain_projects.create_project(web.account.id, "Bakery Sommer")
    client = web.client("owner")
    expected = {
        "/": {"/": "page"},
        "/unassigned": {"/unassigned": "page"},
        "/spam": {"/spam": "page"},
        "/projects": {"/projects": "page"},
        f"/projects/{project.id}/protocol": {"/projects": "location"},
        "/team": {"/team": "page"},
        "/templates": {"/templates": "page"},
        "/templates/new": {"/templates": "location"},
        "/settings": {"/settings": "page"},
        "/notifications": {"/notifications": "page"},
        "/profile": {},
    }
    for path, marked in expected.items():
        html = client.get(path).get_data(as_text=True)
        assert current_links(html) == marked, path
