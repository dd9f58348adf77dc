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
  foreach(pair "changelog;changelog.gz" "cerebras-metrics-proxy.1;cerebras-metrics-proxy.1.gz")
    list(GET pair 0 src)
    list(GET pair 1 dst)
    execute_process(COMMAND ${CMP_GZIP} -9nc ${_cmp_deb}/${src}
                    OUTPUT_FILE ${_cmp_gz}/${dst} COMMAND_ERROR_IS_FATAL ANY)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_cmp_deb}/${src})
  endforeach()
  install(FILES ${_cmp_gz}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cerebras-metrics-proxy COMPONENT deb EXCLUDE_FROM_ALL)
  install(FILES ${_cmp_gz}/cerebras-metrics-proxy.1.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT deb EXCLUDE_FROM_ALL)
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
