# Cross-compiling for arm64 (aarch64) on a Debian 12 amd64 host with Debian's
# multiarch toolchain: crossbuild-essential-arm64 and the `:arm64` -dev
# packages of scripts/packages/cross-arm64.txt (scripts/release.sh installs
# them). The libraries then live in /usr/lib/aarch64-linux-gnu of the host
# itself, so there is no separate sysroot: CMake finds them through
# CMAKE_LIBRARY_ARCHITECTURE, which it reads from the cross compiler.
#
#   cmake -S . -B build-arm64 --toolchain cmake/toolchain-aarch64-linux-gnu.cmake
#
# Tests run under qemu-user-static (CMAKE_CROSSCOMPILING_EMULATOR): ctest and
# gtest_discover_tests put the emulator in front of every test binary. The
# arm64 dynamic loader and libraries are the host's multiarch ones, so qemu
# needs no -L prefix.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# pkg-config (libsystemd) must read the arm64 .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")

find_program(CMP_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(CMP_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${CMP_QEMU_AARCH64})
endif()
