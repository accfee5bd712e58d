// doctest's runner and implementation, compiled once per build and linked
// into every unit-test executable (doctest_main_dep in meson.build). Each
// executable used to compile its own: about a minute each under ASan+UBSan.
// tests/privsep/test_drop_privileges.cc keeps its own main (it must act
// before doctest starts).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
