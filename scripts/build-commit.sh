# Sourced by the comparison scripts: build_commit NAME COMMIT OUT builds the
# stomphub release binary of COMMIT in its own checkout and copies it to
# OUT/stomphub-NAME. Old and new share one target directory, so dependencies
# build once.
build_commit() { # name commit out
  local name=$1 commit=$2 out=$3 dir="target/bench-compare/src-$1"
  rm -rf "$dir"
  git worktree remove --force "$dir" 2>/dev/null || true
  git worktree add --detach "$dir" "$commit" >/dev/null
  CARGO_TARGET_DIR=target/bench-compare/target cargo build --release -p stomphub \
    --manifest-path "$dir/Cargo.toml"
  cp target/bench-compare/target/release/stomphub "$out/stomphub-$name"
  git worktree remove --force "$dir"
  echo "$name = $(git rev-parse --short "$commit")"
}
