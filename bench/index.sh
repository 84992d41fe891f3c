#!/bin/sh
# Index benchmark: bench/index.sh CORPUS_DIR [MAX_FILES]
# Compiles bench/index_bench.c with the index module and the core helpers it
# uses (-O2, into $BUILD, default ../build-index), indexes every file under CORPUS_DIR
# (sorted; the first MAX_FILES if given) into a scratch index, compacts it,
# and prints sizes, throughput, RSS, query latencies and machine ceilings.
# KINDS (default gram3,wide4) selects the gram kinds written. EVERY=N keeps
# every Nth file of the sorted list (a representative sample for iteration).
# Read by the driver: INDEX_ONLY=1 stops after indexing, WRITERS=N interleaves
# the files between N writers (default one writer, which uses every core),
# CHUNK_MPAIRS=N sets the writers' memory bound in M (gram, doc) pairs.
set -eu
corpus=${1:?usage: bench/index.sh CORPUS_DIR [MAX_FILES]}
max=${2:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/../build-index}
kinds=${KINDS:-gram3,wide4}
every=${EVERY:-1}
mkdir -p "$build"
bin=$build/index_bench
# Only the sources the index needs: the rest of the tree may be mid-change.
cc -std=c11 -O2 -g -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -I"$here/src" \
   "$here/bench/index_bench.c" "$here"/src/index/*.c "$here/src/core/error.c" "$here/src/core/files.c" \
   -lroaring -lpthread -lm -o "$bin"
list=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$list" "$list.all" "$scratch"' EXIT
find "$corpus" -type f | LC_ALL=C sort | awk -v n="$every" '(NR - 1) % n == 0' > "$list.all"
if [ "$max" -gt 0 ]; then
    head -n "$max" "$list.all" > "$list"
else
    mv "$list.all" "$list"
fi
rm -f "$list.all"
# Warm the page cache so the read ceiling and the indexing rate are comparable.
xargs -d '\n' cat < "$list" > /dev/null
echo "index bench: $(wc -l < "$list") files from $corpus, kinds $kinds, $(nproc) cores"
"$bin" "$scratch/index" "$kinds" < "$list"
