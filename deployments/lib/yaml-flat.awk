# yaml-flat.awk - flattens the YAML subset of deployment configs to lines
# "path<TAB>value" (path: keys joined by ".", list items by their index),
# so that POSIX sh can read a config without a YAML library.
#
# Read: block mappings and sequences (a sequence may sit at its key's
# indent), lists of mappings, plain and quoted scalars, [a, b] lists of
# scalars, comments, a leading "---".  Anything else (flow mappings,
# anchors, aliases, block scalars, tabs in indentation, a second document)
# is refused with "LINE: reason" on stderr and exit status 2, rather than
# misread.
function fail(msg) {
	printf "%d: %s\n", NR, msg > "/dev/stderr"
	bad = 1
	exit 2
}
function scalar(v, q) {
	sub(/^[ ]+/, "", v)
	q = substr(v, 1, 1)
	if (q == "\"" || q == "'") {
		if (!match(v, q == "\"" ? "^\"[^\"]*\"" : "^'[^']*'"))
			fail("unterminated quoted string")
		rest = substr(v, RLENGTH + 1)
		v = substr(v, 2, RLENGTH - 2)
		sub(/^[ ]+/, "", rest)
		if (rest != "" && rest !~ /^#/)
			fail("text after a quoted string")
		return v
	}
	sub(/[ ]+#.*$/, "", v)
	sub(/[ ]+$/, "", v)
	if (v ~ /^[&*|>!{]/)
		fail("anchors, aliases, tags, block scalars and flow mappings are not supported")
	return v
}
function emit(path, v,    n, i, parts) {
	sub(/^[ ]+/, "", v)
	if (v ~ /^\[/) {
		if (v !~ /\][ ]*(#.*)?$/)
			fail("a [list] must close on its line")
		sub(/\][ ]*(#.*)?$/, "", v)
		v = substr(v, 2)
		if (v ~ /^[ ]*$/)
			return
		n = split(v, parts, ",")
		for (i = 1; i <= n; i++)
			print path "." (i - 1) "\t" scalar(parts[i])
		return
	}
	print path "\t" scalar(v)
}
# key: value  ->  sets K and V (V may be empty); returns 0 if not a key line
function keyline(s) {
	if (!match(s, /^("[^"]*"|'[^']*'|[^ #:"'][^:#]*):([ ].*)?$/))
		return 0
	K = s
	sub(/:([ ].*)?$/, "", K)
	sub(/[ ]+$/, "", K)
	if (K ~ /^["']/)
		K = substr(K, 2, length(K) - 2)
	V = substr(s, length(K) + 2)
	if (substr(s, 1, 1) ~ /["']/)
		V = substr(s, length(K) + 4)
	sub(/^[ ]+/, "", V)
	if (V ~ /^#/)
		V = ""
	return 1
}
function join(p, k) { return p == "" ? k : p "." k }
BEGIN { d = 0; ind[0] = -1; pre[0] = ""; seq[0] = 0; cnt[0] = 0; docs = 0 }
{
	line = $0
	sub(/\r$/, "", line)
	if (line ~ /^[ ]*(#.*)?$/)
		next
	if (line ~ /^---/) {
		if (++docs > 1 || NR > 1 && seen)
			fail("only one YAML document is read")
		next
	}
	if (line ~ /^\.\.\./)
		next
	seen = 1
	if (match(line, /^[ ]*\t/))
		fail("a tab in the indentation")
	match(line, /^[ ]*/)
	n = RLENGTH
	s = substr(line, n + 1)
	dash = (s ~ /^-([ ]|$)/)
	while (d > 0 && (ind[d] > n || (ind[d] == n && !(dash && kind[d] != "map" && kind[d] != "item"))))
		d--
	if (dash) {
		if (kind[d] == "map")
			fail("a list item where a mapping key was expected")
		kind[d] = "seq"
		p = join(pre[d], cnt[d]++)
		rest = substr(s, 2)
		sub(/^[ ]+/, "", rest)
		col = n + 1 + (length(substr(s, 2)) - length(rest))
		if (rest == "" || rest ~ /^#/) {
			d++; ind[d] = n; pre[d] = p; kind[d] = ""; cnt[d] = 0
			next
		}
		if (keyline(rest)) {
			d++; ind[d] = n; pre[d] = p; kind[d] = "item"; cnt[d] = 0
			if (V == "") {
				d++; ind[d] = col; pre[d] = join(p, K); kind[d] = ""; cnt[d] = 0
			} else
				emit(join(p, K), V)
			next
		}
		emit(p, rest)
		next
	}
	if (!keyline(s))
		fail("expected 'key: value' or '- item'")
	if (kind[d] == "seq")
		fail("a mapping key where a list item was expected")
	if (kind[d] == "")
		kind[d] = "map"
	if (V == "") {
		d++; ind[d] = n; pre[d] = join(pre[d - 1], K); kind[d] = ""; cnt[d] = 0
		next
	}
	emit(join(pre[d], K), V)
}
