"""The docs check: headings said once, relative links that lead somewhere."""

from __future__ import annotations

from pathlib import Path

from devstack.docscheck import check, slug
from devstack.paths import ROOT


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_repository_docs_pass() -> None:
    assert check(ROOT) == []


def test_a_heading_doubled_within_a_file_is_reported(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "README.md": "# Project\n\n## Configuration\n\n### Production\n\n"
            "## Performance\n\n### configuration\n",
        },
    )
    assert check(root) == ["README.md:9: heading 'configuration' repeats line 3"]


def test_a_heading_inside_a_code_block_is_not_a_heading(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"README.md": "# Project\n\n## Setup\n\n```bash\n# Setup\n## Setup\n```\n"},
    )
    assert check(root) == []


def test_a_broken_file_link_is_reported(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "README.md": "# Project\n\nSee [the guide](docs/guide.md) and [ops](docs/ops.md).\n",
            "docs/guide.md": "# Guide\n\n![chart](missing.png)\n",
        },
    )
    assert check(root) == [
        "README.md:3: link 'docs/ops.md': no such file",
        "docs/guide.md:3: link 'missing.png': no such file",
    ]


def test_a_broken_anchor_is_reported_with_githubs_slugs(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "README.md": "# Project\n\n"
            "[a](docs/ops.md#development-python3-devpy-up) "
            "[b](docs/ops.md#where-a-webhook-may-go) "
            "[c](#quick-start)\n\n"
            "[d](docs/ops.md#development) [e](#quick_start)\n\n"
            "## Quick start\n",
            "docs/ops.md": "# Operations\n\n## Development: `python3 dev.py up`\n\n"
            "## Where a *webhook* may go\n",
        },
    )
    assert check(root) == [
        "README.md:5: link 'docs/ops.md#development': no heading with that anchor",
        "README.md:5: link '#quick_start': no heading with that anchor",
    ]


def test_slugs_follow_github() -> None:
    assert slug("A 3-node NATS cluster in production") == "a-3-node-nats-cluster-in-production"
    assert slug("Delivery semantics: at least once, effectively once") == (
        "delivery-semantics-at-least-once-effectively-once"
    )
    assert slug("Users & roles") == "users--roles"
    assert slug("RATE_LIMIT_LOGIN") == "rate_limit_login"


def test_links_in_code_external_links_and_explicit_anchors_are_not_checked(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "README.md": '# Project\n\n<a id="top"></a>\n\n[up](#top) '
            "[web](https://example.com/x.md#nope) [mail](mailto:a@example.com) "
            "`[code](nowhere.md)`\n\n```\n[fenced](nowhere.md)\n```\n",
        },
    )
    assert check(root) == []


def test_a_topic_in_two_files_is_reported_but_a_section_under_two_titles_is_not(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "README.md": "# Project\n",
            "docs/users.md": "# Users service\n\n## Settings\n",
            "docs/booking.md": "# Booking service\n\n## Settings\n",
            "docs/users-again.md": "# The users service\n\n## Settings\n",
        },
    )
    assert check(root) == [
        "docs/users.md:1: 'users service' is also docs/users-again.md:1",
        "docs/users.md:3: 'users service > settings' is also docs/users-again.md:3",
    ]


def test_a_section_named_like_another_page_must_link_to_it(tmp_path: Path) -> None:
    files = {
        "README.md": "# Project\n\n## Performance\n\nAbout 1,000 bookings/s.\n\n## License\n",
        "docs/performance.md": "# Performance\n\n[License](../README.md#license)\n",
    }
    assert check(write(tmp_path, files)) == [
        "README.md:3: section 'Performance' is the topic of docs/performance.md; "
        "say it there and link to it"
    ]
    files["README.md"] = files["README.md"].replace(
        "About", "[The numbers](docs/performance.md): about"
    )
    assert check(write(tmp_path, files)) == []
