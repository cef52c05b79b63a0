"""Checks the release files in a directory: the sdist and the wheel built from it.

- ``twine check --strict``: the metadata a package index reads renders and is complete.
- the wheel's platform tag is what its symbols allow: ``auditwheel show`` reads the
  glibc symbol versions the extension links against and names the manylinux policy they
  satisfy; that policy must be among the tags in the file name (manylinux2014 /
  manylinux_2_17), so the wheel installs on every glibc it claims.
- the interpreter tag is abi3 for CPython 3.9 on, as pyproject's requires-python says.

Usage: python scripts/check_dist.py dist
"""

import re
import subprocess
import sys
from pathlib import Path


def wheel_tags(wheel: Path) -> tuple:
    # name-version-python-abi-platform.whl; platform may be several, joined by dots
    _, _, python, abi, platform = wheel.name[: -len(".whl")].split("-")
    return python, abi, platform.split(".")


def main(directory: str) -> int:
    dist = Path(directory)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"check_dist: expected one wheel and one sdist in {dist}, found {wheels + sdists}")
        return 1
    wheel = wheels[0]
    subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdists[0])], check=True)

    python, abi, platforms = wheel_tags(wheel)
    problems = []
    if (python, abi) != ("cp39", "abi3"):
        problems.append(f"interpreter tags {python}-{abi}, expected cp39-abi3")
    if "manylinux_2_17_x86_64" not in platforms and "manylinux_2_17_aarch64" not in platforms:
        problems.append(f"platform tags {platforms} do not claim manylinux_2_17")
    shown = subprocess.run(["auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True).stdout
    found = re.search(r'consistent with the following platform tag:\s*"([^"]+)"', " ".join(shown.split()))
    if not found:
        problems.append(f"auditwheel names no platform tag:\n{shown}")
    elif found.group(1) not in platforms:
        problems.append(f"auditwheel says the wheel is {found.group(1)}, its name claims {platforms}")
    if problems:
        print("check_dist: " + "\n  ".join(problems))
        return 1
    print(f"check_dist: {wheel.name}: tags {python}-{abi}-{'.'.join(platforms)}, auditwheel: {found.group(1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dist"))
