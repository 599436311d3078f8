"""Audit every locked dependency for known vulnerabilities: pip-audit first, PyPI's advisories for the rest.

Usage: python scripts/audit_deps.py [--report FILE]   (make audit; part of make test)
Exit status 1 when any locked version has a known vulnerability, else 0. Packages that neither source can
vouch for are listed as not audited, by name and reason, in the output and the report.

pip-audit asks PyPI for each exact version (/pypi/<name>/<version>/json). Where that is not served (behind
some mirrors), PyPI's project document (/pypi/<name>/json) still lists the advisories of the latest release,
which settles every pin that is the latest release; an older pin is reported as not audited.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def locked_pins() -> dict[str, str]:
    """name -> version of every package in uv.lock, all groups, as uv exports them."""
    exported = subprocess.run(
        [str(ROOT / ".cache/uv/bin/uv"), "export", "--frozen", "--all-groups", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = {}
    for line in exported.splitlines():
        requirement = line.split(";")[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            name, version = requirement.split("==")
            pins[name.lower()] = version
    return pins


def pip_audit(pins: dict[str, str]) -> dict[str, Any]:
    """pip-audit's JSON report for the pins (no resolution: the lock already is the full set)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write("".join(f"{name}=={version}\n" for name, version in pins.items()))
        requirements.flush()
        result = subprocess.run(
            [
                str(BIN / "pip-audit"),
                "-r",
                requirements.name,
                "--no-deps",
                "--disable-pip",
                "-f",
                "json",
                "--progress-spinner",
                "off",
            ],
            capture_output=True,
            text=True,
        )
    if not result.stdout.strip():
        raise SystemExit(f"pip-audit failed:\n{result.stderr}")
    return json.loads(result.stdout)


def latest_release_advisories(name: str) -> tuple[str, list[dict[str, Any]]] | None:
    """(latest version, its advisories) from PyPI's project document, or None when it cannot be read."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=20) as response:
            project = json.load(response)
    except (OSError, ValueError):
        return None
    advisories = [v for v in project.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return project["info"]["version"], advisories


def audit(pins: dict[str, str]) -> dict[str, Any]:
    """Vulnerable, audited and not-audited packages, with where each verdict came from."""
    report = pip_audit(pins)
    vulnerable: dict[str, list[str]] = {}
    audited: dict[str, str] = {}
    unanswered = []
    for dependency in report["dependencies"]:
        name = dependency["name"].lower()
        if "skip_reason" in dependency:
            unanswered.append(name)
            continue
        audited[name] = "pip-audit"
        if dependency.get("vulns"):
            vulnerable[name] = [v["id"] for v in dependency["vulns"]]
    not_audited: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = dict(zip(unanswered, pool.map(latest_release_advisories, unanswered), strict=True))
    for name, answer in answers.items():
        if answer is None:
            not_audited[name] = "PyPI could not be reached"
        elif answer[0] != pins[name]:
            not_audited[name] = f"pinned {pins[name]}, latest {answer[0]}: no per-version data here"
        else:
            audited[name] = "PyPI advisories of the latest release"
            if answer[1]:
                vulnerable[name] = [v["id"] for v in answer[1]]
    return {"pins": len(pins), "audited": audited, "vulnerable": vulnerable, "not_audited": not_audited}


def main() -> int:
    """Audit, print a summary, write the report; exit 1 on a known vulnerability."""
    parser = argparse.ArgumentParser(prog="python scripts/audit_deps.py", description=__doc__.split("\n")[0])
    parser.add_argument("--report", type=Path, help="write the full result here as JSON")
    args = parser.parse_args()
    pins = locked_pins()
    result = audit(pins)
    lines = [f"Dependency audit: {len(result['audited'])} of {result['pins']} locked packages audited."]
    for name, ids in sorted(result["vulnerable"].items()):
        lines.append(f"  VULNERABLE {name}=={pins[name]}: {', '.join(ids)}")
    if not result["vulnerable"]:
        lines.append("  No known vulnerabilities in the audited packages.")
    for name, reason in sorted(result["not_audited"].items()):
        lines.append(f"  not audited: {name} ({reason})")
    sys.stdout.write("\n".join(lines) + "\n")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(result, indent=2, sort_keys=True))
    return 1 if result["vulnerable"] else 0


if __name__ == "__main__":
    sys.exit(main())
