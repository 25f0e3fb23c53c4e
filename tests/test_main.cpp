// doctest main for razor_tests. Run a subset: ./build/razor_tests -tc="json*" -ts="core".
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
