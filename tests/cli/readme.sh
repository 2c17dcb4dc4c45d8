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
mkdir -p "$rm_ex"
rm_ex=$(cd "$rm_ex" && pwd)

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
	run_example "$rm_name" "$rm_script"
	rm_i=$((rm_i + 1))
done
