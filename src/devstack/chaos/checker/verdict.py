"""The verdict: the violations found and the numbers of the run, as a table or a dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    violations: list[str]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": self.violations, "stats": self.stats}

    def table(self) -> str:
        lines = [f"{'operation':<16}{'ok':>8}{'fail':>8}{'info':>8}"]
        for f, counts in sorted(self.stats.get("operations", {}).items()):
            lines.append(
                f"{f:<16}{counts.get('ok', 0):>8}{counts.get('fail', 0):>8}"
                f"{counts.get('info', 0):>8}"
            )
        lines.append("")
        faults = self.stats.get("faults", {})
        lines.append(f"{'fault':<24}{'count':>8}")
        for kind, count in sorted(faults.items()):
            lines.append(f"{kind:<24}{count:>8}")
        if not faults:
            lines.append(f"{'(none)':<24}{0:>8}")
        lines.append("")
        heal = self.stats.get("time_to_heal")
        lines.append(f"{'time to heal':<24}{'never' if heal is None else f'{heal:.1f} s':>8}")
        lines.append(f"{'violations':<24}{len(self.violations):>8}")
        lines.extend(f"  - {violation}" for violation in self.violations)
        return "\n".join(lines)
