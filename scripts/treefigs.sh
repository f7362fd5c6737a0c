#!/bin/bash
# scripts/treefigs.sh [REV]: the shape of src/ at REV (default HEAD), for
# comparing before and after a change to the layout: lines and files per
# folder, the include edges between folders, any pair of folders that
# include each other (there should be none: docs/architecture.md), and
# the count that `duplicates` gives for src/.
set -euo pipefail
rev=${1:-HEAD}
repo=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
git -C "$repo" archive "$rev" src | tar -x -C "$d"
cd "$d"
echo "== lines per folder ($rev)"
for dir in src/*/; do
	printf '%-14s %6d lines %3d files\n' "$dir" "$(cat "$dir"*.[ch] | wc -l)" "$(ls "$dir"*.[ch] | wc -l)"
done
printf '%-14s %6d\n' total "$(cat src/*/*.[ch] | wc -l)"
echo "== include edges between folders"
for f in src/*/*.[ch]; do
	from=$(basename "$(dirname "$f")")
	{ grep -ho '#include "[^"]*"' "$f" || true; } | sed 's/#include "//;s/"//' | while read -r inc; do
		case $inc in
		../*) to=$(echo "$inc" | cut -d/ -f2) ;;
		*/*) to=$(echo "$inc" | cut -d/ -f1) ;;
		*) to=$from ;;
		esac
		if [ "$to" != "$from" ]; then echo "$from $to"; fi
	done
done | sort -u >edges
awk '{ e[$1] = e[$1] " " $2 } END { for (k in e) print k " ->" e[k] }' edges | sort
echo "== folders that include each other"
awk '{ e[$1" "$2] = 1 } END { for (k in e) { split(k, a, " "); if (e[a[2]" "a[1]] && a[1] < a[2]) print a[1] " <-> " a[2] } }' edges
echo "== duplicates src/"
if command -v duplicates >/dev/null; then
	git init -q . && git add -A src && git -c user.email=x@x -c user.name=x commit -qm x
	duplicates --repo src --seconds 120 | head -1
else
	echo "(the duplicates tool is not installed here)"
fi
