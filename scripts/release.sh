#!/usr/bin/env bash
# Builds the release artifacts of VERSION into dist/ on a Debian 12 amd64
# machine (as root: packages, binfmt_misc, rootful podman), and tests them:
#   cerebras-metrics-proxy_VERSION_{amd64,arm64}.deb          lintian --pedantic clean
#   cerebras-metrics-proxy-VERSION.linux-{amd64,arm64}.tar.gz binary, man page, unit,
#                                                             example config, rules,
#                                                             dashboard, LICENSE, README
#   cerebras-metrics-proxy-VERSION.linux-{amd64,arm64}.image.tar.gz   `docker load` archives
#   sha256sums.txt                                            over every file above
# and, in local container storage, the images
#   localhost/cerebras-metrics-proxy:VERSION-{amd64,arm64} and the manifest list
#   localhost/cerebras-metrics-proxy:VERSION that .github/workflows/release.yml pushes.
# arm64 is cross-compiled with Debian's multiarch toolchain
# (cmake/toolchain-aarch64-linux-gnu.cmake); its unit tests run under
# qemu-user-static, and both images are started against the simulated API
# (tests/release/release_artifacts_test.py).
#
# Usage: scripts/release.sh VERSION          (VERSION as in CMakeLists.txt, e.g. 0.2.0)
# Environment:
#   CMP_SOURCE_URL   the repository's URL for the image's source label
#                    (default: the `origin` remote)
#   JOBS             build parallelism (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# -------------------------------------------------- the version: one source
[ $# -eq 1 ] || { echo "usage: scripts/release.sh VERSION" >&2; exit 2; }
version=$1
project_version=$(sed -n 's/^project(cerebras-metrics-proxy VERSION \([^ )]*\).*/\1/p' CMakeLists.txt)
if [ "$version" != "$project_version" ]; then
  echo "release.sh: VERSION $version differs from project(VERSION $project_version) in CMakeLists.txt;" \
       "raise it there first (RELEASING.md)" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "release.sh: needs root (packages, binfmt_misc, podman)" >&2; exit 1; }
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "release.sh: runs on amd64 (cross-compiles arm64)" >&2; exit 1; }

jobs=${JOBS:-$(nproc)}
archs=(amd64 arm64)
# Build trees at the top level like build/ (build-release-amd64, -arm64), so
# that ccache (CCACHE_BASEDIR) hits what other builds of the same sources made;
# everything else in build-release/.
work=$root/build-release
dist=$root/dist
name=cerebras-metrics-proxy
image=localhost/$name
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Reproducible: every timestamp is the commit's (archives, image label).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
source_url=${CMP_SOURCE_URL:-$(git remote get-url origin 2>/dev/null || true)}
source_url=${source_url%.git}
case "$source_url" in
  git@github.com:*) source_url=https://github.com/${source_url#git@github.com:} ;;
esac
if [ -z "$source_url" ]; then
  echo "release.sh: no origin remote and no CMP_SOURCE_URL: the image's source label says 'unknown'" >&2
  source_url=unknown
fi

t_start=$(date +%s)
step() { printf '\n==> [%4ds] %s\n' "$(( $(date +%s) - t_start ))" "$*"; }

mkdir -p "$work"
step "dependencies"
scripts/deps.sh build
cross_opts=$(scripts/cross-deps.sh "$root/build-release-arm64")

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
fi

# ------------------------------------------------------------------- builds
# Release builds as scripts/test.sh makes them (-Werror); the amd64 tests are
# scripts/test.sh's, the arm64 unit tests run here, under qemu.
configure() {  # ARCH
  local arch=$1 opts=()
  if [ "$arch" = arm64 ]; then
    # shellcheck disable=SC2206  # cross-deps.sh prints separate -D options
    opts=(--toolchain cmake/toolchain-aarch64-linux-gnu.cmake $cross_opts -DCMP_REQUIRE_TESTS=ON)
  else
    opts=(-DCMP_BUILD_TESTS=OFF)
  fi
  cmake --no-warn-unused-cli -S . -B "$root/build-release-$arch" -DCMAKE_BUILD_TYPE=Release -DCMP_WERROR=ON -DCMP_BUILD_BENCH=OFF \
        "${opts[@]}" "${launcher[@]}" >/dev/null
}

step "build amd64 (daemon, and the simulated upstream for the image tests)"
configure amd64
cmake --build "$root/build-release-amd64" -j"$jobs" --target "$name" cerebras-mock-upstream

step "build arm64 (cross: daemon and unit tests)"
configure arm64
cmake --build "$root/build-release-arm64" -j"$jobs"

qemu=$(sed -n 's/^CMP_QEMU_AARCH64:FILEPATH=//p' "$root/build-release-arm64/CMakeCache.txt")
[ -x "$qemu" ] || { echo "release.sh: no qemu-aarch64 for the arm64 tests (scripts/packages/release.txt)" >&2; exit 1; }
step "arm64 unit tests under $qemu"
t=$(date +%s)
# The whole log to a file (623 lines of test names); the failures and the
# summary here.
ctest --test-dir "$root/build-release-arm64" -j"$jobs" --output-on-failure --timeout 900 \
  >"$work/arm64-ctest.log" 2>&1 || { grep -A 30 -E 'Failed|\*\*\*' "$work/arm64-ctest.log" >&2; exit 1; }
grep -E '^[0-9]+% tests passed' "$work/arm64-ctest.log"
echo "arm64 unit tests (emulated): $(( $(date +%s) - t )) s"

rm -rf "$dist"
mkdir -p "$dist"

# ----------------------------------------------------------- Debian packages
step "Debian packages"
for arch in "${archs[@]}"; do
  # dpkg-shlibdeps looks the libraries up for the package's architecture.
  (cd "$root/build-release-$arch" && DEB_HOST_ARCH=$arch cpack -G DEB -B "$work/cpack-$arch" >/dev/null)
  deb=${name}_${version}_${arch}.deb
  cp "$work/cpack-$arch/$deb" "$dist/"
  tags=$(lintian --pedantic "$dist/$deb" | grep -E '^[EW]: ' || true)
  if [ -n "$tags" ]; then
    echo "release.sh: lintian reports errors or warnings for $deb:" >&2
    echo "$tags" >&2
    exit 1
  fi
  echo "$deb: lintian --pedantic clean"
done

# ------------------------------------------------------------------ archives
# Laid out like the archives of Prometheus' exporters: one directory named
# after the archive. The binary is the package's (stripped by CPack).
man_page() {  # made from --help by help2man in the amd64 build (cmake/packaging.cmake)
  local built
  built=$(find "$root/build-release-amd64" -maxdepth 2 -name "$name.1" -print -quit)
  [ -n "$built" ] || { echo "release.sh: no man page in build-release-amd64 (help2man missing?)" >&2; exit 1; }
  echo "$built"
}

step "archives"
for arch in "${archs[@]}"; do
  base=$name-$version.linux-$arch
  stage=$work/archive/$base
  rm -rf "$stage" && mkdir -p "$stage/rules" "$stage/dashboards"
  dpkg-deb --fsys-tarfile "$dist/${name}_${version}_${arch}.deb" \
    | tar -x -O ./usr/bin/$name >"$stage/$name"
  chmod 0755 "$stage/$name"
  install -m 0644 "$(man_page)" "$stage/$name.1"
  install -m 0644 packaging/systemd/$name.service packaging/systemd/config.yml LICENSE "$stage/"
  mv "$stage/config.yml" "$stage/$name.yml"
  install -m 0644 config/prometheus/rules/cerebras.rules.yml "$stage/rules/"
  install -m 0644 config/grafana/cerebras-dashboard.json "$stage/dashboards/"
  sed -e "s/@VERSION@/$version/g" -e "s/@ARCH@/$arch/g" packaging/archive/README.md >"$stage/README.md"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
      -C "$work/archive" -c "$base" | gzip -9n >"$dist/$base.tar.gz"
done

# -------------------------------------------------------------------- images
ulimits() {
  local nofile nproc
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  echo "--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
}

step "images"
mkdir -p "$work/bin"
for arch in "${archs[@]}"; do
  mkdir -p "$work/bin/linux-$arch"
  cp "$work/archive/$name-$version.linux-$arch/$name" "$work/bin/linux-$arch/$name"
  base_image=debian:bookworm-slim
  [ "$arch" = amd64 ] || base_image=debian:bookworm-slim-$arch
  docker/base-image.sh "$base_image" "$arch"
  t=$(date +%s)
  # --format docker keeps the HEALTHCHECK (the OCI image format has none).
  # shellcheck disable=SC2046  # ulimits prints separate options
  podman build --runtime runc $(ulimits) --format docker --platform "linux/$arch" \
    --ignorefile docker/Dockerfile.dockerignore -f docker/Dockerfile --target release \
    --build-context release-bin="$work/bin" --build-arg DEBIAN_IMAGE="$base_image" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" --build-arg SOURCE="$source_url" \
    --timestamp "$SOURCE_DATE_EPOCH" -t "$image:$version-$arch" . >"$work/image-$arch.log" 2>&1 \
    || { tail -n 30 "$work/image-$arch.log" >&2; exit 1; }
  echo "$image:$version-$arch built in $(( $(date +%s) - t )) s"
  podman save --format docker-archive "$image:$version-$arch" \
    | gzip -9n >"$dist/$name-$version.linux-$arch.image.tar.gz"
done
podman manifest rm "$image:$version" >/dev/null 2>&1 || podman rmi "$image:$version" >/dev/null 2>&1 || true
podman manifest create "$image:$version" >/dev/null
for arch in "${archs[@]}"; do
  podman manifest add "$image:$version" "containers-storage:$image:$version-$arch" >/dev/null
done

# ----------------------------------------------------------------- checksums
step "sha256sums.txt"
(cd "$dist" && sha256sum -- * >sha256sums.txt)

# ------------------------------------------------------------------- tests
step "tests of the artifacts (arm64 emulated)"
python3 -u tests/release/release_artifacts_test.py --dist "$dist" --version "$version" \
  --mock "$root/build-release-amd64/cerebras-mock-upstream" --image "$image" --revision "$revision" --source "$source_url"

step "artifacts"
(cd "$dist" && for f in *; do printf '%10s  %s\n' "$(du -h --apparent-size "$f" | cut -f1)" "$f"; done)
for arch in "${archs[@]}"; do
  printf '%10s  %s (uncompressed image)\n' \
    "$(podman image inspect --format '{{.Size}}' "$image:$version-$arch" | numfmt --to=iec)" "$image:$version-$arch"
done
podman manifest inspect "$image:$version" \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print("manifest list:", ", ".join(d["platform"]["os"] + "/" + d["platform"]["architecture"] for d in m["manifests"]))'
step "release $version done in $(( $(date +%s) - t_start )) s"
