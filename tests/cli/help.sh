#!/bin/sh
# Every tool answers --help and --version, rejects an unknown option with
# exit 2, and its --help names every long option its man page documents.
. "$MEM_SRCDIR/tests/lib.sh"

for tool in mem-fetch mem-tile mem-infer mem-store mem-demo mem-run; do
	check "$tool --help exits 0" "$tool" --help
	if "$tool" --help | grep -q "^Usage: $tool"; then ok "$tool --help starts with Usage"; else not_ok "$tool --help starts with Usage"; fi
	if "$tool" --version | head -1 | grep -Eq "^$tool \(memories\) [0-9]"; then
		ok "$tool --version names the tool and version"
	else
		not_ok "$tool --version names the tool and version"
	fi
	check_exit "$tool --no-such-option exits 2" 2 "$tool" --no-such-option
	msg=$(stderr_of "$tool" --no-such-option)
	case $msg in
	*"--help"*) ok "$tool unknown option points at --help" ;;
	*) not_ok "$tool unknown option points at --help"; diag "$msg" ;;
	esac
	# the long options of --help all appear in the man page, and back
	page="$MEM_SRCDIR/man/$tool.1"
	missing=""
	for opt in $("$tool" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
		grep -q -- "${opt#--}" "$page" || missing="$missing $opt"
	done
	if [ -z "$missing" ]; then ok "$tool: man page names every option of --help"; else not_ok "$tool: man page lacks$missing"; fi
done

done_testing
