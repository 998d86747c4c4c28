"""Counts what a JUnit XML report (nextest, pytest) says ran, for scripts/test's summary.

Prints one line, `<tests> <passed> <failed> <skipped>`, then one line per distinct skip reason.
Exits 1 when the report is missing or unreadable.
"""

import sys
import xml.etree.ElementTree as ElementTree


def main(path: str) -> int:
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        print(f"cannot read {path}: {error}", file=sys.stderr)
        return 1
    tests = failed = skipped = 0
    reasons: list[str] = []
    for case in root.iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        skip = case.find("skipped")
        if skip is not None:
            skipped += 1
            reason = (skip.get("message") or skip.text or "no reason given").strip().splitlines()[0]
            if reason not in reasons:
                reasons.append(reason)
    print(tests, tests - failed - skipped, failed, skipped)
    for reason in reasons:
        print(reason)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
