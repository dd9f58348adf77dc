# Debian package: `cpack -G DEB` in the build tree makes
# cerebras-metrics-proxy_<version>_amd64.deb. Laid out like Debian's own
# exporter packages (prometheus-node-exporter): the unit in /lib/systemd/system,
# flags in /etc/default, the example configuration as a conffile. The unit's
# DynamicUser= replaces the system user those packages create.
#
# Only the `deb` component is packaged, so the generic install() rules above
# (prefix-relative etc/) do not leak /usr/etc into the package; and the `deb`
# rules are EXCLUDE_FROM_ALL, so a plain `cmake --install` does not also write
# /etc/default or a second copy of the unit.

set(_cmp_deb ${PROJECT_SOURCE_DIR}/packaging/debian)

install(TARGETS cerebras-metrics-proxy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT deb EXCLUDE_FROM_ALL)
# bookworm: units live in /lib, not /usr/lib (no file may move across the
# /usr merge, see Debian's DEP 17).
install(FILES packaging/systemd/cerebras-metrics-proxy.service
        DESTINATION /lib/systemd/system COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES packaging/systemd/config.yml RENAME cerebras-metrics-proxy.yml
        DESTINATION /etc/cerebras-metrics-proxy COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${_cmp_deb}/default RENAME cerebras-metrics-proxy
        DESTINATION /etc/default COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${_cmp_deb}/copyright
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cerebras-metrics-proxy COMPONENT deb EXCLUDE_FROM_ALL)

# Debian wants compressed, timestamp-free (gzip -n) changelog and man page.
find_program(CMP_GZIP gzip)
if(CMP_GZIP)
  set(_cmp_gz ${CMAKE_CURRENT_BINARY_DIR}/packaging)
  file(MAKE_DIRECTORY ${_cmp_gz})
  execute_process(COMMAND ${CMP_GZIP} -9nc ${_cmp_deb}/changelog
                  OUTPUT_FILE ${_cmp_gz}/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_cmp_deb}/changelog)
  install(FILES ${_cmp_gz}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cerebras-metrics-proxy COMPONENT deb EXCLUDE_FROM_ALL)
endif()

# The man page is made from `--help` at build time (help2man), plus the
# sections --help does not print (FILES, EXAMPLES, SIGNALS, SEE ALSO) from
# packaging/debian/cerebras-metrics-proxy.h2m: the flags, the environment and
# the exit codes have one source, main.cpp. help2man makes "Exit status:" and
# "Documentation:" subsections of ENVIRONMENT (it knows no such headings);
# sed makes them sections. tests/integration/docs_drift_test.py compares
# --help, this page and the README.
#
# A step of the daemon's own build (POST_BUILD), not a target of its own, so
# that whatever builds the daemon (`--target cerebras-metrics-proxy` in
# scripts/release.sh) also makes the page cpack installs; the include file
# relinks the daemon when it changes (LINK_DEPENDS). help2man runs the
# program it documents: a cross-built one runs under the emulator, through a
# wrapper named like the program.
find_program(CMP_HELP2MAN help2man)
if(CMP_HELP2MAN AND CMP_GZIP AND (NOT CMAKE_CROSSCOMPILING OR CMAKE_CROSSCOMPILING_EMULATOR))
  set(_cmp_man ${_cmp_gz}/cerebras-metrics-proxy.1)
  set(_cmp_h2m ${_cmp_deb}/cerebras-metrics-proxy.h2m)
  set(_cmp_documented $<TARGET_FILE:cerebras-metrics-proxy>)
  if(CMAKE_CROSSCOMPILING)
    list(JOIN CMAKE_CROSSCOMPILING_EMULATOR " " _cmp_emulator)
    set(_cmp_documented ${_cmp_gz}/emulated/cerebras-metrics-proxy)
    file(GENERATE OUTPUT ${_cmp_documented}
         CONTENT "#!/bin/sh\nexec ${_cmp_emulator} $<TARGET_FILE:cerebras-metrics-proxy> \"$@\"\n"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endif()
  add_custom_command(TARGET cerebras-metrics-proxy POST_BUILD
    COMMAND ${CMP_HELP2MAN} --no-info --section=1 --version-string=${PROJECT_VERSION}
            "--name=Prometheus exporter for the Cerebras Metrics API"
            --include=${_cmp_h2m} --output=${_cmp_man} ${_cmp_documented}
    COMMAND sed -i -e "s/^\\.SS \"Exit status:\"/.SH \"EXIT STATUS\"/"
            -e "s/^\\.SS \"Documentation:\"/.SH DOCUMENTATION/" ${_cmp_man}
    COMMAND ${CMP_GZIP} -9nkf ${_cmp_man}
    COMMENT "help2man: cerebras-metrics-proxy.1 from --help"
    VERBATIM)
  set_property(TARGET cerebras-metrics-proxy APPEND PROPERTY LINK_DEPENDS ${_cmp_h2m})
  install(FILES ${_cmp_man}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT deb EXCLUDE_FROM_ALL)
else()
  message(STATUS "No man page: help2man missing (scripts/packages/build.txt lists it), or a cross build "
                 "without CMAKE_CROSSCOMPILING_EMULATOR")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cerebras-metrics-proxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "cerebras-metrics-proxy contributors")
set(CPACK_PACKAGE_CONTACT "cerebras-metrics-proxy maintainers <maintainers@users.noreply.b-seed-1764fe1e.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Prometheus exporter for the Cerebras Metrics API")
set(CPACK_PACKAGE_DESCRIPTION
    "Polls the Cerebras Metrics API within its hard request budget (6 requests
per minute, kept across restarts) and serves the latest snapshot as
Prometheus text on a local /metrics endpoint, so that any number of
scrapers never cost an upstream request. Runs as a sandboxed systemd
service with a dynamic user; the API key is passed with LoadCredential=.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL deb)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The architecture of the binary, not of the build host: a cross build
# (cmake/toolchain-aarch64-linux-gnu.cmake) makes the _arm64.deb. CPack's own
# default asks `dpkg --print-architecture`, which is the host's.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|amd64|AMD64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()
set(CPACK_DEBIAN_PACKAGE_NAME cerebras-metrics-proxy)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the binary's shared libraries (dpkg-shlibdeps), plus what
# no library link shows: the CA bundle the upstream TLS verification uses, and
# /bin/kill of the unit's ExecReload= (procps is not in a minimal Debian: there
# `systemctl reload` failed with 203/EXEC).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_cmp_deb}/postinst ${_cmp_deb}/prerm ${_cmp_deb}/postrm ${_cmp_deb}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
