#!/bin/sh
# Prints the version: `git describe` in a checkout, the .tarball-version
# file in a release tarball, and 0.1.0-dev otherwise.
d=$(dirname "$0")/..
if [ -f "$d/.tarball-version" ]; then
	cat "$d/.tarball-version"
elif v=$(git -C "$d" describe --tags --always --dirty 2>/dev/null) && [ -n "$v" ]; then
	case "$v" in v[0-9]*) echo "${v#v}" ;; *) echo "0.1.0-g$v" ;; esac
else
	echo 0.1.0-dev
fi
