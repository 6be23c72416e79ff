# Jars for the tests' JVM programs, resolved by Maven from a pom under tests/ into a cache outside
# git; sourced, not run (scripts/lib/kafka-common.sh for the Kafka jars, scripts/glue-reader.sh for
# AWS's Glue SerDe). The sourcing script provides log and die.
#
#   maven_jars POM DIR MARKER MVNLOG
#     Makes DIR hold POM's dependencies (`mvn dependency:copy-dependencies`), unless DIR/.pom.sha256
#     already names POM's hash (a changed pom, same versions or not, fetches again). MARKER is a jar
#     that must be there afterwards; Maven's output goes to MVNLOG, its tail to stderr on failure.
#     A copy is made in a temp dir beside DIR and renamed: a half-finished copy is never used.
#     Any failure is fatal (die): a test that needs the jars never runs, or skips, without them.

maven_jars() {
  local pom=$1 dir=$2 marker=$3 mvnlog=$4 want
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $dir/.pom.sha256 && $(cat "$dir/.pom.sha256") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the jars of $pom)"
  local cache; cache=$(dirname "$dir")
  mkdir -p "$cache"
  local tmp; tmp=$(mktemp -d "$cache/.$(basename "$dir").XXXXXX")
  log "fetching the jars of ${pom#"$ROOT"/} into $dir"
  # Maven's output goes to a file (it prints colour codes even with -q -B); shown on failure.
  if ! mvn -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" \
      >"$mvnlog" 2>&1; then
    tail -n 30 "$mvnlog" >&2
    rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed (log: $mvnlog)"
  fi
  [[ -f $tmp/$marker ]] || { rm -rf "$tmp"; die "$marker missing after mvn"; }
  echo "$want" >"$tmp/.pom.sha256"
  chmod 755 "$tmp"   # mktemp makes it 0700
  if [[ -d $dir ]]; then
    # Stale copy from an older pom: swap it out (a running JVM keeps its open jars).
    local old="$dir.old.$$"
    mv "$dir" "$old" && mv "$tmp" "$dir" && rm -rf "$old"
  else
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"   # lost a race: someone else renamed first
  fi
  [[ -f $dir/$marker ]] || die "jar cache $dir is incomplete"
}
