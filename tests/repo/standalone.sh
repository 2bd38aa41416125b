#!/usr/bin/env bash
# The repository stands alone: no tracked file refers to a path outside it
# (a user's clone has nothing beside it). Run by ctest as repo_stands_alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout; nothing to check"
  exit 0
fi
# The folder known to sit beside development checkouts, and the design
# notes kept there (the repo has its own, docs/design.md).
pattern='\.\./shared\b|/work/shared|DESIGN\.md'
if hits=$(git grep -nIE "$pattern" -- . ':!tests/repo/standalone.sh'); then
  echo "files refer to paths outside the repository:"
  echo "$hits"
  exit 1
fi
echo "no references outside the repository"
