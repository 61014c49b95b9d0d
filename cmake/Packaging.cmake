# The Debian package: `cpack -G DEB` in a build directory builds
# ringlb_<version>-<revision>_<arch>.deb (tests/cli/package_test.sh checks it, lintian
# included). The package installs under /usr (plain `cmake --install` keeps
# /usr/local): ringlbd and ringlb in /usr/sbin, the unit in Debian's systemd unit dir,
# the example config as the conffile /etc/ringlb/ringlb.toml.example
# (cmake/InstallDeployment.cmake places both), the BPF objects, the docs and the man
# pages. Its maintainer scripts and Debian files are in tools/debian/.
# Included before any install rule: the directory mode below holds for all of them.

# Directories that installs create are 0755 whatever the umask (lintian:
# non-standard-dir-perm).
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(RINGLB_DEB_DIR ${PROJECT_SOURCE_DIR}/tools/debian)
set(RINGLB_DEB_REVISION 1)
set(RINGLB_DEB_MAINTAINER "ringlb maintainers <maintainers@users.noreply.b-seed-d7e7e2d9.example>"
    CACHE STRING "Maintainer field and changelog signature of the Debian package")

# What only the package carries (component deb, left out of `cmake --install`):
# Debian's copyright file, changelog.Debian.gz and the lintian overrides.
configure_file(${RINGLB_DEB_DIR}/changelog.in ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian
               @ONLY)
find_program(RINGLB_GZIP gzip REQUIRED)
add_custom_command(
  OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian.gz
  COMMAND sh -c "\"$0\" -9n -c \"$1\" > \"$2\"" ${RINGLB_GZIP}
          ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian
          ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian.gz
  DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian
  VERBATIM)
add_custom_target(ringlb_deb_files ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian.gz)
install(FILES ${RINGLB_DEB_DIR}/copyright ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.Debian.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${RINGLB_DEB_DIR}/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
        RENAME ringlb COMPONENT deb EXCLUDE_FROM_ALL)

# postinst creates /etc/ringlb/ringlb.toml for the user the unit runs ringlbd as (its
# User=, root without one): ringlbd must read it, and refuses it unless it is private
# to root or to that user.
set(ringlb_unit ${PROJECT_SOURCE_DIR}/tools/systemd/ringlbd.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ringlb_unit})
file(STRINGS ${ringlb_unit} ringlb_unit_user REGEX "^User=")
string(REGEX REPLACE "^User=" "" RINGLB_SERVICE_USER "${ringlb_unit_user}")
if(NOT RINGLB_SERVICE_USER)
  set(RINGLB_SERVICE_USER root)
elseif(NOT RINGLB_SERVICE_USER MATCHES "^(root|ringlb)$")
  message(FATAL_ERROR "tools/systemd/ringlbd.service runs ringlbd as ${RINGLB_SERVICE_USER}; "
                      "the package creates only the user ringlb (tools/debian/postinst.in)")
endif()
configure_file(${RINGLB_DEB_DIR}/postinst.in ${CMAKE_CURRENT_BINARY_DIR}/debian/postinst @ONLY
               FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                WORLD_READ WORLD_EXECUTE)

# Under /usr the config dir is /etc (InstallDeployment.cmake): the conffile's path.
if(IS_ABSOLUTE "${CMAKE_INSTALL_SYSCONFDIR}")
  set(RINGLB_DEB_SYSCONFDIR "${CMAKE_INSTALL_SYSCONFDIR}")
else()
  set(RINGLB_DEB_SYSCONFDIR "/${CMAKE_INSTALL_SYSCONFDIR}")
endif()
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles
     "${RINGLB_DEB_SYSCONFDIR}/ringlb/ringlb.toml.example\n")

set(CPACK_PACKAGE_NAME ringlb)
set(CPACK_PACKAGE_VENDOR "The ringlb developers")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${RINGLB_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "load balancer with io_uring proxy workers and an XDP data plane")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION [=[
ringlb balances services on edge Linux hosts in two planes that share one
model, one Maglev table and one client hash:
 - an XDP program balances packets at the NIC (Maglev consistent hashing,
   IPIP/IP6IP6 encapsulation, direct server return), or steers each client
   to the CPU of the worker that serves it;
 - ringlbd, per-core io_uring workers, forwards TCP connections with splice
   under five policies, with retries, passive ejection, active health
   checks, slow start and a panic threshold.

The ringlb command attaches the XDP program, edits its maps and shows
counters; a FUSE control filesystem changes settings live and serves the
counters as text, JSON and Prometheus metrics.]=])
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${RINGLB_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_RELEASE ${RINGLB_DEB_REVISION})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Libraries from dpkg-shlibdeps; adduser for the maintainer scripts; fuse3 for the
# control filesystem (fusermount3, /etc/fuse.conf).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, fuse3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles ${CMAKE_CURRENT_BINARY_DIR}/debian/postinst
    ${RINGLB_DEB_DIR}/prerm ${RINGLB_DEB_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Installed with DESTDIR at the prefix /usr, so that the install-time rules see the
# real prefix and the absolute /etc and /lib destinations land in the package.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # the prefix of that install (with CPACK_SET_DESTDIR)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)  # ringlbd and ringlb; the BPF objects keep their BTF
# Everything `cmake --install` installs, and the component deb.
set(CPACK_INSTALL_CMAKE_PROJECTS
    "${CMAKE_BINARY_DIR};${PROJECT_NAME};ALL;/" "${CMAKE_BINARY_DIR};${PROJECT_NAME};deb;/")
set(CPACK_GENERATOR DEB)
include(CPack)
