#!/bin/sh
# Install mtls-config, as users run it, into a virtual environment of its own: not editable, every dependency
# at the version constraints.txt pins (the versions CI tested). What the container image RUNs, what .ci/dist runs
# on the freshly built wheel, and what the GitHub Action runs on its own checkout.
#
#   tools/install.sh SOURCE PREFIX CONSTRAINTS
#     SOURCE       a wheel file (or a source tree: pip builds it)
#     PREFIX       the virtual environment to create; the command is PREFIX/bin/mtls-config
#     CONSTRAINTS  the constraints.txt to install with
set -eu
if [ "$#" -ne 3 ]; then
  echo "usage: $0 SOURCE PREFIX CONSTRAINTS" >&2
  exit 2
fi
source=$1 prefix=$2 constraints=$3
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check -c "$constraints" "$source"
# The console script, as pipx would put it on PATH: it starts and knows its version.
"$prefix/bin/mtls-config" --version
