#!/bin/sh
# Mutation testing (docs/testing.md): cosmic-ray over one module with its targeted tests.
# Usage: scripts/mutation/run.sh NAME [EARLIER_SESSION]
#   NAME: scripts/mutation/NAME.toml, e.g. workflow_policy.
#   EARLIER_SESSION: re-run only that session's survivors (with the selection as it is now; tests
#   only added since cannot revive a mutant it killed), keeping its other results.
# Never part of the normal test command: every mutant costs one pytest run.
# cosmic-ray edits the module in place, so it runs in a copy of the work tree (tracked and new,
# unignored files, as they are now) under $GLEITZEIT_MUTATION_DIR; PYTHONPATH points there, so a
# `gleitzeit` subprocess a test starts imports the mutant too. The work tree stays untouched.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
name=$1
earlier=${2:+$(realpath "$2")}
out=${GLEITZEIT_MUTATION_DIR:-${TMPDIR:-/tmp}/gleitzeit-mutation}
copy="$out/$name-tree"
session="$out/$name.sqlite"
mkdir -p "$out"
[ -z "$earlier" ] || cp "$earlier" "$out/$name.earlier.sqlite"  # it may be the session this run replaces
rm -rf "$copy" "$session"
mkdir -p "$copy"
(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 tar -c --no-recursion -f -) | tar -x -C "$copy"
cd "$copy"
export PYTHONPATH="$copy${PYTHONPATH:+:$PYTHONPATH}"
# cosmic-ray's test runs write no bytecode: compile the copy once, or each run compiles it all.
python -m compileall -q -x '/(\.|node_modules)' . >/dev/null || true
cfg="scripts/mutation/$name.toml"
if [ -n "$earlier" ]; then
  mv "$out/$name.earlier.sqlite" "$session"
  python -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute("DELETE FROM work_results WHERE test_outcome = ?", ("SURVIVED",)); db.commit()' "$session"
else
  cosmic-ray init "$cfg" "$session"
  cr-filter-operators "$session" "$cfg"
  cr-filter-pragma "$session"
  python scripts/mutation/filter_functions.py "$session" --config "$cfg"  # [cosmic-ray.filters.function-filter], if any
fi
cosmic-ray exec "$cfg" "$session"
cr-report "$session" | grep -B2 'test outcome: TestOutcome.SURVIVED' || true
cr-report "$session" | tail -3
echo "session: $session (details: cr-report $session; cr-html $session > report.html)"
