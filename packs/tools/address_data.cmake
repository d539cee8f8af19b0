# The national address dictionary of the demo and the tests (I1): the npm
# package jquery-jpostal-ja (Ninton G.K., MIT license, Japan Post's postal
# data) is downloaded once per build directory and converted into Japan
# Post's utf_ken_all.csv format (packs/tools/jpostal_to_kenall.py):
#   ${MG_ADDRESS_CSV} = <build>/data/utf_ken_all.csv
# Part of ALL (target mg_address_data).  Without npm or the registry the
# build fails and says why.
set(MG_JPOSTAL_VERSION 2.14.73)
set(MG_JPOSTAL_SHA256
  2ce7baa752dc8ecc1264e694c49d3713f6279538299062499215eaa302a966c4)
set(MG_ADDRESS_DATA_DIR ${CMAKE_BINARY_DIR}/data)
set(MG_ADDRESS_CSV ${MG_ADDRESS_DATA_DIR}/utf_ken_all.csv)
set(_mg_jpostal_tgz
  ${MG_ADDRESS_DATA_DIR}/jquery-jpostal-ja-${MG_JPOSTAL_VERSION}.tgz)
find_program(MG_NPM npm)
find_package(Python3 REQUIRED COMPONENTS Interpreter)

# No DEPENDS: once the tarball is there it is not downloaded again.
add_custom_command(OUTPUT ${_mg_jpostal_tgz}
  COMMAND ${CMAKE_COMMAND} -DNPM=${MG_NPM} -DVERSION=${MG_JPOSTAL_VERSION}
    -DSHA256=${MG_JPOSTAL_SHA256} -DDEST=${MG_ADDRESS_DATA_DIR}
    -P ${CMAKE_CURRENT_LIST_DIR}/fetch_jpostal.cmake
  COMMENT "Downloading jquery-jpostal-ja@${MG_JPOSTAL_VERSION} with npm (address data)"
  VERBATIM)
add_custom_command(OUTPUT ${MG_ADDRESS_CSV}
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/jpostal_to_kenall.py
    ${_mg_jpostal_tgz} ${MG_ADDRESS_CSV}
  DEPENDS ${_mg_jpostal_tgz} ${CMAKE_CURRENT_LIST_DIR}/jpostal_to_kenall.py
  COMMENT "Converting jquery-jpostal-ja into data/utf_ken_all.csv"
  VERBATIM)
add_custom_target(mg_address_data ALL DEPENDS ${MG_ADDRESS_CSV})
