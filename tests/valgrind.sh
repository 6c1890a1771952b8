#!/bin/sh
# The wrapper of `meson test --setup valgrind`: each C test runs under
# memcheck; any error or leak fails it.
exec valgrind --quiet --error-exitcode=1 --leak-check=full "$@"
