#!/bin/sh
# manpages.sh - the man pages format cleanly and their EXAMPLES run.
#
# Each page in man/ must give no output from `groff -ww -z -mandoc` and,
# where mandoc is installed, from `mandoc -Tlint -Wwarning`.  Then, as jq
# runs the examples of its manual, every literal display (.Bd -literal ...
# .Ed) in a page's EXAMPLES section is taken as a shell script: it is
# unescaped from mdoc (\e, \(ba, \-, \&) and run with `sh -e` in a fresh
# directory where `mem-demo -o demo` has made the demo catalog.  So an
# example that stops working fails here, by page and block number.
#
# Everything is counted first, so the plan comes before the first test.

# shellcheck disable=SC1091
. "$MEM_SRCDIR/tests/lib.sh"

mp_ex="$T/examples"
mkdir -p "$mp_ex"
mp_ex=$(cd "$mp_ex" && pwd)

# Writes the EXAMPLES displays of page $1 to $mp_ex/NAME.N.sh; prints N.
mp_extract()
{
	awk -v dir="$mp_ex" -v page="${1##*/}" '
	function unescape(s,    out, c, i, n) {
		out = ""
		n = length(s)
		for (i = 1; i <= n; i++) {
			c = substr(s, i, 1)
			if (c != "\\") {
				out = out c
				continue
			}
			c = substr(s, i + 1, 1)
			if (c == "e") {
				out = out "\\"; i++
			} else if (c == "-") {
				out = out "-"; i++
			} else if (c == "&") {
				i++
			} else if (substr(s, i + 1, 3) == "(ba") {
				out = out "|"; i += 3
			} else if (substr(s, i + 1, 3) == "(aq") {
				out = out "\047"; i += 3
			} else if (substr(s, i + 1, 3) == "(dq") {
				out = out "\""; i += 3
			} else {
				out = out "\\"
			}
		}
		return out
	}
	/^\.Sh[ \t]/ {
		inex = ($0 ~ /^\.Sh[ \t]+"?EXAMPLES"?[ \t]*$/)
		inblock = 0
		next
	}
	inex && /^\.Bd[ \t]+-literal/ {
		n++
		file = dir "/" page "." n ".sh"
		printf "" > file
		inblock = 1
		next
	}
	inblock && /^\.Ed([ \t]|$)/ {
		close(file)
		inblock = 0
		next
	}
	inblock && /^\.\\"/ { next }
	inblock { print unescape($0) > file }
	END { print n + 0 }
	' "$1"
}

mp_pages=
mp_total=0
for mp_page in "$MEM_SRCDIR"/man/*.[1-9]; do
	[ -f "$mp_page" ] || continue
	mp_pages="$mp_pages $mp_page"
	mp_n=$(mp_extract "$mp_page")
	mp_total=$((mp_total + 2 + mp_n))
done

if [ -z "$mp_pages" ]; then
	plan 1
	not_ok "man pages in $MEM_SRCDIR/man"
	exit 1
fi

plan "$mp_total"

for mp_page in $mp_pages; do
	mp_name=${mp_page##*/}

	if command -v groff >/dev/null 2>&1; then
		mp_out=$(groff -ww -z -mandoc "$mp_page" 2>&1) || mp_out="$mp_out
groff exited with status $?"
		if [ -z "$mp_out" ]; then
			ok "groff -ww $mp_name"
		else
			not_ok "groff -ww $mp_name"
			printf '%s\n' "$mp_out" | sed 's/^/# /'
		fi
	else
		ok "groff -ww $mp_name # SKIP no groff"
	fi

	if command -v mandoc >/dev/null 2>&1; then
		mp_out=$(mandoc -Tlint -Wwarning "$mp_page" 2>&1) || mp_out="$mp_out
mandoc exited with status $?"
		if [ -z "$mp_out" ]; then
			ok "mandoc -Tlint $mp_name"
		else
			not_ok "mandoc -Tlint $mp_name"
			printf '%s\n' "$mp_out" | sed 's/^/# /'
		fi
	else
		ok "mandoc -Tlint $mp_name # SKIP no mandoc"
	fi

	mp_i=1
	while [ -f "$mp_ex/$mp_name.$mp_i.sh" ]; do
		run_example "$mp_name-example-$mp_i" "$mp_ex/$mp_name.$mp_i.sh"
		mp_i=$((mp_i + 1))
	done
done
