#!/usr/bin/env bash
# Checks every `#include "<folder>/..."` in src/ and kernels/ against the dependency order in
# docs/architecture.md (the ```deps block: "folder: what it may include", each folder allowed
# only folders declared on earlier lines, so the layering has no cycle).
# usage: tools/check_deps.sh   (from the repository root; exit 1 on any violation)
set -u
doc=docs/architecture.md
[ -f "$doc" ] || { echo "check-deps: $doc not found (run from the repository root)"; exit 2; }
declare -A allowed declared
order=()
fail=0
while IFS= read -r line; do
  folder=${line%%:*}
  folder=${folder// /}
  deps=${line#*:}
  [ -n "$folder" ] || continue
  for d in $deps; do
    if [ -z "${declared[$d]:-}" ]; then
      echo "check-deps: $doc: '$folder' may include '$d', which is not declared on an earlier line"
      fail=1
    fi
  done
  allowed[$folder]=" $deps "
  declared[$folder]=1
  order+=("$folder")
done < <(awk '/^```deps/{f=1; next} /^```/{f=0} f' "$doc")
[ ${#order[@]} -gt 0 ] || { echo "check-deps: no \`\`\`deps block in $doc"; exit 2; }

dir_of() { case $1 in kernels/*) echo kernels ;; src/*) f=${1#src/}; echo "${f%%/*}" ;; esac; }
files=$( (ls src/*/*.cpp src/*/*.h src/*/*.inc kernels/*.cpp kernels/*.h 2>/dev/null) | sort)
for f in $files; do
  own=$(dir_of "$f")
  if [ -z "${declared[$own]:-}" ]; then
    echo "check-deps: $f: folder '$own' is not declared in $doc"
    fail=1
    continue
  fi
  while IFS=: read -r ln inc; do
    target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^/"]+)\/.*/\1/' <<<"$inc")
    [ "$target" = "$own" ] && continue
    [ -n "${declared[$target]:-}" ] || continue  # not a razor folder (e.g. "doctest/...")
    if [[ "${allowed[$own]}" != *" $target "* ]]; then
      echo "check-deps: $f:$ln: $own may not include $target/ ($inc)"
      fail=1
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^/"]+/' "$f")
done
if [ $fail = 0 ]; then
  echo "check-deps: ok (${#order[@]} folders: ${order[*]})"
fi
exit $fail
