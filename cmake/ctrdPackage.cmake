# The plugin-author package that `cmake --install` lays out next to the daemon:
# the plugin-API headers under include/ctrd and a CMake package, so that
#   find_package(ctrd REQUIRED)
#   ctrd_add_plugin(my_plugin SOURCES my_plugin.cpp)
# builds a shared object for the daemon's plugin_dir. There is no library to
# link: a plugin resolves ctrd's symbols from the daemon, which exports exactly
# the plugin API (src/plugin/plugin_api.dynlist).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(ctrd_api_headers GLOBAL PROPERTY CTRD_PLUGIN_API_HEADERS)
get_property(CTRD_PLUGIN_API_HASH GLOBAL PROPERTY CTRD_PLUGIN_API_HASH)
set(ctrd_include_dir ${CMAKE_INSTALL_INCLUDEDIR}/ctrd)
foreach(h ${ctrd_api_headers})
  get_filename_component(dir ${h} DIRECTORY)
  install(FILES ${CMAKE_SOURCE_DIR}/src/${h} DESTINATION ${ctrd_include_dir}/${dir})
endforeach()
install(FILES ${CMAKE_BINARY_DIR}/generated/plugin/abi_version.h DESTINATION ${ctrd_include_dir}/plugin)

set(ctrd_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ctrd)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/ctrdConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/ctrdConfig.cmake
  INSTALL_DESTINATION ${ctrd_cmake_dir}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
# The stamp names the exact ctrd version, so only that version will load the plugin.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/ctrdConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ExactVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/ctrdConfig.cmake ${CMAKE_BINARY_DIR}/cmake/ctrdConfigVersion.cmake
  DESTINATION ${ctrd_cmake_dir})
