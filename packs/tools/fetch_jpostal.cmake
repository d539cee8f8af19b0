# Download the npm package jquery-jpostal-ja (the national postal data,
# MIT license) with npm, check its SHA-256, and leave the tarball in DEST.
# Run by the build (packs/tools/address_data.cmake):
#   cmake -DNPM=... -DVERSION=... -DSHA256=... -DDEST=... -P fetch_jpostal.cmake
set(tgz "${DEST}/jquery-jpostal-ja-${VERSION}.tgz")
set(hint "The address dictionary of the demo and the tests (I1) comes from \
the npm registry: install npm (scripts/install-deps) and make sure \
https://registry.npmjs.org/ is reachable, then build again.")
if(NOT NPM OR NOT EXISTS "${NPM}")
  message(FATAL_ERROR "npm not found: cannot download jquery-jpostal-ja@${VERSION}. ${hint}")
endif()
file(MAKE_DIRECTORY "${DEST}")
file(REMOVE "${tgz}")
execute_process(
  COMMAND "${NPM}" pack "jquery-jpostal-ja@${VERSION}" --loglevel=error
  WORKING_DIRECTORY "${DEST}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS "${tgz}")
  string(STRIP "${err}" err)
  message(FATAL_ERROR "`npm pack jquery-jpostal-ja@${VERSION}` failed (exit ${rc}): ${err}\n${hint}")
endif()
file(SHA256 "${tgz}" got)
if(NOT got STREQUAL SHA256)
  file(REMOVE "${tgz}")
  message(FATAL_ERROR "jquery-jpostal-ja-${VERSION}.tgz: SHA-256 ${got}, expected ${SHA256}; refusing it")
endif()
