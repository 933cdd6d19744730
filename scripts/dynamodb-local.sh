#!/usr/bin/env bash
# Installs Amazon's DynamoDB Local (shipped inside the npm package
# amplify-dynamodb-simulator) into the user's cache directory, once, and
# prints the directory that holds DynamoDBLocal.jar.
#
# The version and the tarball's SHA-256 are pinned: bump both together.
set -euo pipefail

version="2.9.30"
sha256="3503ffac19f183407909fecdacf4db51ab1fdad1da7b2f177016670b2d80e4b9"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/stampede/dynamodb-local/$version"
if [[ -f "$cache/DynamoDBLocal.jar" ]]; then
  echo "$cache"
  exit 0
fi

command -v java >/dev/null || { echo "dynamodb-local: Java 17+ is required (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
command -v npm >/dev/null || { echo "dynamodb-local: npm is required to fetch DynamoDB Local" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "dynamodb-local: fetching amplify-dynamodb-simulator@$version" >&2
(cd "$work" && npm pack --silent "amplify-dynamodb-simulator@$version" >/dev/null 2>&1)
tarball="$work/amplify-dynamodb-simulator-$version.tgz"
# sha256sum on Linux, shasum on macOS.
if command -v sha256sum >/dev/null; then
  actual="$(sha256sum "$tarball" | cut -d' ' -f1)"
else
  actual="$(shasum -a 256 "$tarball" | cut -d' ' -f1)"
fi
if [[ "$actual" != "$sha256" ]]; then
  echo "dynamodb-local: checksum mismatch for $tarball: got $actual, want $sha256" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/emulator
mkdir -p "$(dirname "$cache")"
rm -rf "$cache.tmp"
mv "$work/package/emulator" "$cache.tmp"
mv "$cache.tmp" "$cache"
echo "$cache"
