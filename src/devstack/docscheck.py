"""`python -m devstack.docscheck`: the README and docs/ say each thing once, and their
relative links lead somewhere. Run by `dev.py check`.

The rules (docs/README.md says them to writers):

- Within one file, a heading text appears once, at whatever level. A repeat is either a
  topic said twice or a second anchor (`#settings-1`) that no reader can guess.
- Across files, the top-level headings (`#` and `##`) are compared by their path: the
  heading with the `#` above it. `## Settings` under `# Users service API` and under
  `# Booking service API` are two paths, so both may exist; two files with the same title,
  or the same section under the same title, are one topic in two places.
- A `##` section named like another file's title (`## Performance` while a page is titled
  `# Performance`) says that page's topic again, unless the section links to the page:
  then it is the short pointer the front page is meant to have.
- Every relative link (`[text](path)`, `[text](path#anchor)`, `[text](#anchor)`, images,
  reference definitions) names a file or folder that exists; an anchor into a Markdown
  file names one of its headings, slugged as GitHub does (lowercase, punctuation but `-`
  and `_` dropped, each space a `-`, a repeat numbered `-1`, `-2`), or an explicit
  `<a id=...>`/`<a name=...>`.

Text compared is the heading as GitHub renders it (code spans, links and emphasis reduced
to their text), case-insensitive, with a leading "The", "A" or "An" dropped. Fenced code
blocks are skipped. Only ATX headings (`#` lines) count: the project writes no others.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from devstack.paths import ROOT

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*(?:[ \t]#+[ \t]*)?$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(
    r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_TAG = re.compile(r"<[^>]+>")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str  # as rendered: what the slug and the comparisons are made of
    line: int
    path: tuple[str, ...]  # normalized texts from the top-level heading down


@dataclass(frozen=True)
class Link:
    target: str
    line: int


@dataclass
class Document:
    path: Path
    headings: list[Heading] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)

    @property
    def title(self) -> str | None:
        return next((h.path[0] for h in self.headings if h.level == 1), None)


def rendered(text: str) -> str:
    """A heading's text as GitHub shows it: code spans, links and emphasis reduced to text."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), text)
    text = INLINE_LINK.sub(lambda m: m.group(1), text)
    text = HTML_TAG.sub("", text)
    return text.replace("*", "").strip()


def slug(text: str) -> str:
    """GitHub's anchor for a heading (github-slugger, before de-duplication)."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def normalized(text: str) -> str:
    return LEADING_ARTICLE.sub("", " ".join(text.lower().split()).rstrip(".:"))


def parse(path: Path) -> Document:
    document = Document(path)
    fence: str | None = None
    above: list[tuple[int, str]] = []  # (level, normalized text) of the enclosing headings
    seen: defaultdict[str, int] = defaultdict(int)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        document.anchors.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading:
            level, text = len(heading.group(1)), rendered(heading.group(2))
            above = [(lvl, t) for lvl, t in above if lvl < level] + [(level, normalized(text))]
            document.headings.append(
                Heading(level, text, number, tuple(t for lvl, t in above if lvl <= 2))
            )
            base = slug(text)
            anchor = base if seen[base] == 0 else f"{base}-{seen[base]}"
            seen[base] += 1
            document.anchors.add(anchor)
        reference = REFERENCE.match(line)
        if reference:
            document.links.append(Link(reference.group(1), number))
            continue
        without_code = CODE_SPAN.sub("", line)
        document.links.extend(Link(m.group(2), number) for m in INLINE_LINK.finditer(without_code))
    return document


def repeated_headings(document: Document, root: Path) -> list[str]:
    first: dict[str, Heading] = {}
    problems = []
    for heading in document.headings:
        key = normalized(heading.text)
        if key in first:
            problems.append(
                f"{_where(document, heading.line, root)}: heading {heading.text!r} repeats "
                f"line {first[key].line}"
            )
        else:
            first[key] = heading
    return problems


def topics_said_twice(documents: list[Document], root: Path) -> list[str]:
    problems = []
    owners: dict[tuple[str, ...], tuple[Document, Heading]] = {}
    for document in documents:
        for heading in document.headings:
            if heading.level > 2:
                continue
            owner = owners.get(heading.path)
            if owner is None:
                owners[heading.path] = (document, heading)
            elif owner[0] is not document:
                problems.append(
                    f"{_where(document, heading.line, root)}: {' > '.join(heading.path)!r} "
                    f"is also {_where(owner[0], owner[1].line, root)}"
                )
    titles = {d.title: d for d in documents if d.title is not None}
    for document in documents:
        for heading in document.headings:
            page = titles.get(normalized(heading.text))
            if heading.level != 2 or page is None or page is document:
                continue
            if not _links_to(document, heading, page):
                problems.append(
                    f"{_where(document, heading.line, root)}: section {heading.text!r} is the "
                    f"topic of {page.path.relative_to(root)}; say it there and link to it"
                )
    return problems


def broken_links(document: Document, documents: dict[Path, Document], root: Path) -> list[str]:
    problems = []
    for link in document.links:
        target = link.target
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part)
        if file_part.startswith("/"):
            resolved = (root / file_part.lstrip("/")).resolve()
        elif file_part:
            resolved = (document.path.parent / file_part).resolve()
        else:
            resolved = document.path
        where = _where(document, link.line, root)
        if not resolved.exists():
            problems.append(f"{where}: link {target!r}: no such file")
            continue
        if not anchor or resolved.suffix.lower() != ".md" or resolved.is_dir():
            continue
        linked = documents.get(resolved) or parse(resolved)
        if unquote(anchor) not in linked.anchors:
            problems.append(f"{where}: link {target!r}: no heading with that anchor")
    return problems


def _links_to(document: Document, heading: Heading, page: Document) -> bool:
    """Whether the section under `heading` has a link to `page`."""
    after = [h.line for h in document.headings if h.line > heading.line and h.level <= 2]
    end = after[0] if after else float("inf")
    for link in document.links:
        file_part = unquote(link.target.partition("#")[0])
        inside = heading.line < link.line < end and file_part
        if inside and (document.path.parent / file_part).resolve() == page.path.resolve():
            return True
    return False


def _where(document: Document, line: int, root: Path) -> str:
    return f"{document.path.relative_to(root)}:{line}"


def markdown_files(root: Path) -> list[Path]:
    files = [root / "README.md"] if (root / "README.md").exists() else []
    return files + sorted((root / "docs").rglob("*.md"))


def check(root: Path = ROOT) -> list[str]:
    """Every problem in the README and docs/, one line each; empty when they pass."""
    paths = [path.resolve() for path in markdown_files(root)]
    root = root.resolve()
    documents = {path: parse(path) for path in paths}
    problems: list[str] = []
    for document in documents.values():
        problems += repeated_headings(document, root)
        problems += broken_links(document, documents, root)
    problems += topics_said_twice(list(documents.values()), root)
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    count = len(markdown_files(ROOT))
    print(f"docs: {count} files, {len(problems) or 'no'} problem{'s' * (len(problems) != 1)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
