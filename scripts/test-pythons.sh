#!/usr/bin/env bash
# Every supported Python other than the one .venv uses (the list is `py_versions` in setup.py, which also makes the
# classifiers and python_requires): in its own venv (.venv-3.X), install the project with its dev extra, then run the
# notebooks' tests and the fast pytest subset. The newest version runs with a developer's settings exported, so that
# CI keeps checking the tests do not depend on them.
# A supported version with no interpreter on this machine is named; with CI set (or --strict) that fails the run.
# Usage: scripts/test-pythons.sh [--strict] [3.X ...]   (default: every supported version but .venv's)
set -uo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

strict=""; case "${CI:-}" in ""|0|false|no) ;; *) strict=1 ;; esac
if [ "${1:-}" = "--strict" ]; then strict=1; shift; fi

supported=$(sed -n "s/^py_versions = '\(.*\)'\.split()/\1/p" setup.py)
[ -n "$supported" ] || { echo "test-pythons: cannot read py_versions from setup.py"; exit 2; }
base=.venv/bin/python; [ -x "$base" ] || base=python3
default=$("$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ $# -gt 0 ]; then versions="$*"; else versions=$(for v in $supported; do [ "$v" = "$default" ] || echo "$v"; done); fi
newest=$(echo $versions | tr ' ' '\n' | tail -n 1)

# An interpreter for minor version $1: python3.X on PATH (a pyenv shim only counts if it runs), else the newest
# patch release under pyenv's versions folder.
find_python() {
  local v=$1 cand root
  local roots=("${PYENV_ROOT:-}" "$HOME/.pyenv")
  command -v pyenv >/dev/null && roots=("$(pyenv root 2>/dev/null)" "${roots[@]}")
  for cand in "$(command -v "python$v" 2>/dev/null)" \
              $(for root in "${roots[@]}"; do [ -n "$root" ] && ls -d "$root"/versions/"$v".*/bin/"python$v" 2>/dev/null; done | sort -rV); do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    if "$cand" -c "import sys, venv; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$v' else 1)" >/dev/null 2>&1; then
      echo "$cand"; return 0
    fi
  done
  return 1
}

now() { date +%s; }
declare -a summary
failed=0
for v in $versions; do
  if ! py=$(find_python "$v"); then
    line="Python $v: NOT TESTED: no interpreter found (python$v on PATH, or under \$(pyenv root)/versions/$v.*)"
    echo "$line"; summary+=("$line")
    [ -n "$strict" ] && failed=1
    continue
  fi
  venv=".venv-$v"; problems=(); env_note=""; t0=$(now)
  echo "=== Python $v ($py) in $venv"
  { [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"; } &&
    "$venv/bin/pip" install -q -e ".[dev]" && "$venv/bin/pip" check || problems+=("install failed")
  t1=$(now); t2=$t1; t3=$t1
  if [ ${#problems[@]} = 0 ]; then
    envs=(); dev_root=""
    if [ "$v" = "$newest" ]; then
      # What a privacy-minded student or a developer may have exported; the tests must set what they rely on.
      dev_root=$(mktemp -d)
      envs=(TITO_NO_SYNC=1 NO_COLOR=1 TITO_ROOT="$dev_root" TITO_ALLOW_HTTP=1)
      env_note=" with ${envs[*]}"
    fi
    env "${envs[@]}" "$venv/bin/nbdev_test" --n_workers 2 || problems+=("nbdev_test failed")
    t2=$(now)
    env "${envs[@]}" "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" tests || problems+=("pytest failed")
    t3=$(now)
    if [ -n "$dev_root" ]; then
      [ -z "$(ls -A "$dev_root")" ] || problems+=("the tests wrote into \$TITO_ROOT ($dev_root)")
      rm -rf "$dev_root"
    fi
  fi
  status=ok; [ ${#problems[@]} = 0 ] || { status=$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g'); failed=1; }
  line="Python $v: $status$env_note (install $((t1 - t0)) s, nbdev_test $((t2 - t1)) s, pytest -m 'not slow' $((t3 - t2)) s)"
  echo "$line"; summary+=("$line")
done

echo "=== Supported Pythons other than .venv's $default (which scripts/test.sh runs the whole suite on):"
printf '%s\n' "${summary[@]}"
exit $failed
