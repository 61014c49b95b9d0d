# Runs at install time (tools/CMakeLists.txt includes it from install(CODE)), when the
# prefix is known: `cmake --install --prefix P`, or cpack's /usr (cmake/Packaging.cmake).
# Installs the systemd unit and the example config.
#
# The unit tools/systemd/ringlbd.service is written for the default prefix; the installed
# copy names this install's ringlbd and documentation instead.
# Under the prefix /usr (a distribution package) the unit goes where the distribution's
# systemd looks for packaged units (RINGLB_SYSTEMD_UNITDIR: systemd.pc's
# systemdsystemunitdir, /lib/systemd/system on Debian 12) and the example config to
# /etc, as GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR does; under any other prefix
# both stay below the prefix (lib/systemd/system, etc/ringlb).
#
# In: RINGLB_SOURCE_DIR (tools/), RINGLB_BINARY_DIR, RINGLB_SBINDIR, RINGLB_DOCDIR,
#     RINGLB_SYSCONFDIR (GNUInstallDirs' values, relative or absolute),
#     RINGLB_SYSTEMD_UNITDIR.

function(ringlb_full_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

string(REGEX REPLACE "/+$" "" ringlb_prefix "${CMAKE_INSTALL_PREFIX}")
if(ringlb_prefix STREQUAL "/usr")
  set(ringlb_unitdir "${RINGLB_SYSTEMD_UNITDIR}")
  if(IS_ABSOLUTE "${RINGLB_SYSCONFDIR}")
    set(ringlb_sysconfdir "${RINGLB_SYSCONFDIR}")
  else()
    set(ringlb_sysconfdir "/${RINGLB_SYSCONFDIR}")
  endif()
else()
  set(ringlb_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  ringlb_full_dir(ringlb_sysconfdir "${RINGLB_SYSCONFDIR}")
endif()
ringlb_full_dir(ringlb_sbindir "${RINGLB_SBINDIR}")
ringlb_full_dir(ringlb_docdir "${RINGLB_DOCDIR}")

file(READ "${RINGLB_SOURCE_DIR}/systemd/ringlbd.service" ringlb_unit)
string(FIND "${ringlb_unit}" "/usr/local/sbin/ringlbd" ringlb_found)
if(ringlb_found EQUAL -1)
  message(FATAL_ERROR "tools/systemd/ringlbd.service no longer names /usr/local/sbin/ringlbd: "
                      "update cmake/InstallDeployment.cmake, which rewrites that path")
endif()
string(REPLACE "/usr/local/sbin/ringlbd" "${ringlb_sbindir}/ringlbd" ringlb_unit "${ringlb_unit}")
string(REPLACE "/usr/local/share/doc/ringlb" "${ringlb_docdir}" ringlb_unit "${ringlb_unit}")
# One generated copy per prefix, so installs to two prefixes from one build never race.
string(MD5 ringlb_tag "${CMAKE_INSTALL_PREFIX}")
set(ringlb_generated "${RINGLB_BINARY_DIR}/unit-${ringlb_tag}/ringlbd.service")
file(WRITE "${ringlb_generated}" "${ringlb_unit}")

file(INSTALL DESTINATION "${ringlb_unitdir}" TYPE FILE FILES "${ringlb_generated}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL DESTINATION "${ringlb_sysconfdir}/ringlb" TYPE FILE
     FILES "${RINGLB_SOURCE_DIR}/demo/ringlb.example.toml" RENAME ringlb.toml.example
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
