#!/bin/sh
# The quickstart on an installed mtls-config (the first one on PATH): a copy of the example stack applied to its
# embedded local instance, then planned again, which must say "No changes", and a drift check, which must be
# clean. Needs no Java (keytool), no network and no instance. The container image RUNs it as its user, .ci/dist
# on the wheel installed in a clean venv, tests/test_distribution.py on the installed package.
#
#   tools/check-quickstart.sh EXAMPLE_DIR
set -eu
if [ "$#" -ne 1 ]; then
  echo "usage: $0 EXAMPLE_DIR" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$1" "$work/stack"
rm -rf "$work/stack/.mtls-config"  # a state left by an earlier run would make the plan below say nothing
cd "$work/stack"
out=$(mtls-config apply --auto-approve)
echo "$out" | grep "^Apply finished" || true
echo "$out" | grep -q "8 applied, 0 failed" || { echo "$out"; echo "check-quickstart: apply did not apply 8" >&2; exit 1; }
out=$(mtls-config plan)  # exit 0: no changes
echo "$out" | tail -n 1
echo "$out" | grep -q "No changes" || { echo "$out"; echo "check-quickstart: the second plan is not empty" >&2; exit 1; }
mtls-config drift
