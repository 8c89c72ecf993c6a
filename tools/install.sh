#!/bin/sh
# Install mtls-config, as users run it, into a virtual environment of its own: not editable, every dependency
# at the version constraints.txt pins (the versions CI tested). What the container image RUNs, what .ci/dist runs
# on the freshly built wheel, and what the GitHub Action runs on its own checkout.
#
#   tools/install.sh SOURCE PREFIX CONSTRAINTS [WHEELHOUSE]
#     SOURCE       a wheel file (or a source tree: pip builds it)
#     PREFIX       the virtual environment to create; the command is PREFIX/bin/mtls-config
#     CONSTRAINTS  the constraints.txt to install with
#     WHEELHOUSE   a folder of wheels to install from, and nothing else (no index): the image builds them
#                  where a compiler is (twofish, which pyjks needs, is published as source only)
set -eu
if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
  echo "usage: $0 SOURCE PREFIX CONSTRAINTS [WHEELHOUSE]" >&2
  exit 2
fi
source=$1 prefix=$2 constraints=$3
python3 -m venv "$prefix"
if [ "$#" -eq 4 ]; then
  set -- --no-index --find-links "$4"
else
  set --
fi
"$prefix/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check "$@" -c "$constraints" "$source"
# The console script, as pipx would put it on PATH: it starts and knows its version.
"$prefix/bin/mtls-config" --version
