# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the collection's docsite (docs/docsite/) into a staged copy of the collection, from docs/*.md.

The guides are written once, in Markdown (docs/*.md, read on GitHub and linked from the README);
antsibull-docs, which renders collection documentation for docs.ansible.com, takes extra documents only
as reStructuredText under docs/docsite/rst/ with an index docs/docsite/extra-docs.yml. This script makes
both from the Markdown with pandoc (pypandoc_binary), into a staged tree, never into the checkout:
the result is a build output, shipped in the built collection.

  docsite.py COLLECTION_DIR     (a staged copy of the checkout: ansible_collections/azure_flex/vmss)

Each guide gets the label antsibull-docs requires (ansible_collections.azure_flex.vmss.docsite.<name>);
links to other guides become references to their labels; links to other files of the repository become
links to the repository (galaxy.yml `repository`), which the docsite cannot host.
"""

from __future__ import annotations

import os
import re
import sys

import pypandoc
import yaml

NAMESPACE_NAME = "azure_flex.vmss"
LABEL_PREFIX = "ansible_collections.%s.docsite." % NAMESPACE_NAME
# The guides, in the order the docsite lists them (every docs/*.md must be named here: the check fails
# on a guide that would be left out).
GUIDES = ["authentication", "permissions", "rolling", "inventory", "reliability", "performance"]
MARKDOWN_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def rewrite_links(markdown, guide_names, repository, source_dir):
    """Point relative links at the docsite (guides) or at the repository (any other file)."""
    def replace(match):
        bang, text, target = match.groups()
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, _sep, anchor = target.partition("#")
        name = os.path.splitext(os.path.basename(path))[0]
        if not bang and path.endswith(".md") and os.path.dirname(os.path.normpath(os.path.join(source_dir, path))) \
                == os.path.normpath(source_dir) and name in guide_names:
            return "[%s](%s%s)" % (text, "guide:", name)
        repository_path = os.path.normpath(os.path.join("docs", path))
        kind = "raw" if bang else "blob"
        url = "%s/%s/main/%s%s" % (repository.rstrip("/"), kind, repository_path, "#" + anchor if anchor else "")
        return "%s[%s](%s)" % (bang, text, url)
    return MARKDOWN_LINK.sub(replace, markdown)


def to_rst(markdown):
    rst = pypandoc.convert_text(markdown, "rst", format="gfm-gfm_auto_identifiers", extra_args=["--wrap=preserve"])

    # Guide links were written as "guide:<name>" targets: make them docsite references.
    def reference(match):
        return ":ref:`%s <%s%s>`" % (match.group(1).strip(), LABEL_PREFIX, match.group(2))

    return re.sub(r"`([^`<]+?) <guide:([a-z_-]+)>`__", reference, rst)


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    collection = argv[0]
    docs = os.path.join(collection, "docs")
    with open(os.path.join(collection, "galaxy.yml"), encoding="utf-8") as handle:
        repository = yaml.safe_load(handle)["repository"]
    present = sorted(os.path.splitext(name)[0] for name in os.listdir(docs) if name.endswith(".md"))
    unlisted = [name for name in present if name not in GUIDES]
    if unlisted:
        print("docsite.py: docs/%s.md is not in GUIDES; add it" % ", docs/".join(unlisted), file=sys.stderr)
        return 1
    guides = [name for name in GUIDES if name in present]
    rst_dir = os.path.join(docs, "docsite", "rst")
    os.makedirs(rst_dir, exist_ok=True)
    for name in guides:
        with open(os.path.join(docs, name + ".md"), encoding="utf-8") as handle:
            markdown = rewrite_links(handle.read(), guides, repository, docs)
        with open(os.path.join(rst_dir, name + ".rst"), "w", encoding="utf-8") as handle:
            handle.write(".. _%s%s:\n\n" % (LABEL_PREFIX, name))
            handle.write(to_rst(markdown))
    index = {"sections": [{"title": "Guides", "toctree": guides}]}
    with open(os.path.join(docs, "docsite", "extra-docs.yml"), "w", encoding="utf-8") as handle:
        handle.write("---\n# Written by tests/publish/docsite.py from docs/*.md.\n")
        yaml.safe_dump(index, handle, sort_keys=False)
    links = {"edit_on_github": {"repository": repository.split("github.com/", 1)[-1].rstrip("/"), "branch": "main",
                                "path_prefix": ""},
             "extra_links": [{"description": "Report an issue", "url": repository.rstrip("/") + "/issues"}]}
    with open(os.path.join(docs, "docsite", "links.yml"), "w", encoding="utf-8") as handle:
        handle.write("---\n# Written by tests/publish/docsite.py.\n")
        yaml.safe_dump(links, handle, sort_keys=False)
    print("docsite.py: %d guide(s) written to %s" % (len(guides), rst_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
