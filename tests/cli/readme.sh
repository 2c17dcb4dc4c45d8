#!/bin/sh
# readme.sh - the examples in README.md run.
#
# A fenced ```sh block immediately preceded by a line `<!-- example -->` is
# an example: it is run with `sh -e` in a fresh directory where
# `mem-demo -o demo` has made the demo catalog, offline.  Blocks without the
# mark (installing packages, the quick start) are documentation only.  A
# mark that is not followed by a ```sh block is an error too, so that an
# example cannot silently stop being tested.

# shellcheck disable=SC1091
. "$MEM_SRCDIR/tests/lib.sh"

rm_readme="$MEM_SRCDIR/README.md"
rm_ex="$T/examples"
rm_logs="$T/logs"
mkdir -p "$rm_ex" "$rm_logs"
rm_ex=$(cd "$rm_ex" && pwd)
rm_logs=$(cd "$rm_logs" && pwd)

if command -v timeout >/dev/null 2>&1; then
	rm_timeout="timeout ${MEM_EXAMPLE_TIMEOUT:-300}"
else
	rm_timeout=
fi

if [ ! -f "$rm_readme" ]; then
	plan 1
	not_ok "README.md exists"
	exit 1
fi

# Writes the examples to $rm_ex/README.N.sh; prints "N BAD" where BAD counts
# marks that are not followed by a ```sh line.
rm_counts=$(awk -v dir="$rm_ex" '
	{ sub(/\r$/, "") }
	inblock {
		if ($0 ~ /^```[ \t]*$/) {
			close(file)
			inblock = 0
		} else {
			print > file
		}
		next
	}
	mark {
		mark = 0
		if ($0 ~ /^```sh[ \t]*$/) {
			n++
			file = dir "/README." n ".sh"
			printf "" > file
			inblock = 1
			next
		}
		bad++
	}
	/^<!-- example -->[ \t]*$/ { mark = 1 }
	END { if (mark) bad++; print n + 0, bad + 0 }
' "$rm_readme")
rm_n=${rm_counts% *}
rm_bad=${rm_counts#* }

plan $((rm_n + 1))

if [ "$rm_n" -gt 0 ] && [ "$rm_bad" -eq 0 ]; then
	ok "README.md has $rm_n marked examples, each a sh block"
else
	not_ok "README.md has marked examples, each a sh block"
	echo "# $rm_n examples; $rm_bad <!-- example --> marks not followed by a \`\`\`sh line"
fi

rm_i=1
while [ "$rm_i" -le "$rm_n" ]; do
	rm_name="README.md-example-$rm_i"
	rm_script="$rm_ex/README.$rm_i.sh"
	rm_dir="$T/run/$rm_name"
	rm_log="$rm_logs/$rm_name.log"
	mkdir -p "$rm_dir"
	if (
		cd "$rm_dir" || exit 1
		unset MEM_WORKDIR
		if ! mem-demo -o demo > "$rm_log" 2>&1; then
			echo "mem-demo -o demo failed" >> "$rm_log"
			exit 1
		fi
		exec $rm_timeout sh -e "$rm_script" < /dev/null >> "$rm_log" 2>&1
	); then
		ok "$rm_name"
	else
		rm_rc=$?
		not_ok "$rm_name"
		echo "# exit status $rm_rc; the example:"
		sed 's/^/#   /' "$rm_script"
		echo "# its output:"
		tail -n 40 "$rm_log" | sed 's/^/# /'
	fi
	rm_i=$((rm_i + 1))
done
