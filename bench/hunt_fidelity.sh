#!/bin/bash
# bench/hunt_fidelity.sh: the fidelity test over every rule file of ../shared/data/rules
# (make check runs a subset). Prints, per rule file, trawl's candidates and the matches
# (equal to the yara CLI's, or the test fails). Takes a while under ASan; set TRAWL_BIN
# to a release binary to make it quicker.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export TRAWL_BIN=${TRAWL_BIN:-$HERE/../build/asan/trawl}
export TRAWL_HUNT_FULL=1
export TRAWL_HUNT_REPORT=${TRAWL_HUNT_REPORT:-$(mktemp)}
cd "$HERE/../tests/e2e"
/usr/bin/python3 -m pytest -q -x test_hunt_fidelity.py -k equals_full
cat "$TRAWL_HUNT_REPORT"
